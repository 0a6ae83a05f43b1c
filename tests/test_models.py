"""Every registered model: forward shape, weight_layers() contract (classifier last), gradients."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from common.config import compose
from common.models import build_model, list_models
from common.registry import discover

discover()  # papers register their own architectures


@pytest.mark.parametrize("name", list_models())
def test_model_contract(name: str) -> None:
    model_cfg = compose("rainbow", "mlp", []).model
    cfg = OmegaConf.create(OmegaConf.to_container(model_cfg) | {"name": name, "width": 8, "depth": 2,
                                                                "width_scale": 0.125, "blocks": 2, "width_mult": 0.25})
    net = build_model(cfg, (1, 28, 28), 10)
    x = torch.randn(4, 1, 28, 28)
    logits = net(x)
    assert logits.shape == (4, 10)
    layers = net.weight_layers()
    assert all(isinstance(m, nn.Linear | nn.Conv2d) for m in layers)
    assert layers[-1].weight.shape[0] == 10  # the classifier is last
    logits.square().mean().backward()
    assert all(m.weight.grad is not None for m in layers)


def test_unknown_model_is_a_user_error() -> None:
    from common.errors import UserError

    cfg = OmegaConf.merge(compose("rainbow", "mlp", []).model, {"name": "nope"})
    with pytest.raises(UserError, match="Valid models: cnn, mlp"):
        build_model(cfg, (1, 8, 8), 10)
