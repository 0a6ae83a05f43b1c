"""Model registry: `build_model(model_cfg, input_shape, num_classes)` by `model_cfg.name`.

Every model exposes `weight_layers()`: its learned Linear/Conv2d layers in forward order, the
classifier last. Algorithms that work layer by layer (rainbow resampling) rely on it.
"""

from __future__ import annotations

from collections.abc import Callable

from omegaconf import DictConfig
from torch import nn

from common.errors import UserError
from common.models.convnet import ConvNet
from common.models.mlp import MLP
from common.models.resnet import resnet18

MODELS: dict[str, Callable[[DictConfig, tuple[int, ...], int], nn.Module]] = {
    "mlp": lambda m, shape, k: MLP(shape, k, width=m.width, depth=m.depth, norm=m.norm),
    "cnn": lambda m, shape, k: ConvNet(shape, k, width=m.width, depth=m.depth, norm=m.norm,
                                       kernel_size=m.kernel_size),
    "resnet18": lambda m, shape, k: resnet18(shape[0], k, width_scale=m.width_scale),
}


def register_model(name: str, factory: Callable[[DictConfig, tuple[int, ...], int], nn.Module]) -> None:
    """A paper adds an architecture of its own (built from the same `model` config group); names are unique."""
    if name in MODELS and MODELS[name] is not factory:
        raise ValueError(f"A model named '{name}' is registered already: give the new architecture its own name.")
    MODELS[name] = factory


def list_models() -> list[str]:
    return sorted(MODELS)


def build_model(model_cfg: DictConfig, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    if model_cfg.name not in MODELS:
        raise UserError(f"Unknown model '{model_cfg.name}'. Valid models: {', '.join(list_models())}.")
    return MODELS[model_cfg.name](model_cfg, tuple(input_shape), num_classes)
