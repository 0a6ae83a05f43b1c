"""Shared parts of the reproduction suite: config, registry, training, data, models, claims."""
