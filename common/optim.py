"""Optimizer and learning-rate schedule from the `optim` config group."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from omegaconf import DictConfig


def build_optimizer(optim: DictConfig, params: Iterable[torch.nn.Parameter], max_epochs: int) -> dict:
    """Lightning's `configure_optimizers` return value.

    schedule: none | step (lr · gamma^⌊epoch/step_size⌋) | cosine (over max_epochs), stepped per epoch.
    """
    if optim.name == "sgd":
        opt = torch.optim.SGD(params, lr=optim.lr, momentum=optim.momentum, nesterov=optim.nesterov,
                              weight_decay=optim.weight_decay)
    elif optim.name == "adam":
        opt = torch.optim.Adam(params, lr=optim.lr, weight_decay=optim.weight_decay)
    else:
        raise ValueError(f"unknown optimizer '{optim.name}' (sgd | adam)")
    if optim.schedule == "none":
        return {"optimizer": opt}
    if optim.schedule == "step":
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=optim.step_size, gamma=optim.gamma)
    elif optim.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max_epochs)
    else:
        raise ValueError(f"unknown schedule '{optim.schedule}' (none | step | cosine)")
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
