"""One package per paper; each registers itself with `common.registry.register`."""
