"""Optimizer and learning-rate schedule from the `optim` config group."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from omegaconf import DictConfig


def build_optimizer(optim: DictConfig, params: Iterable[torch.nn.Parameter], max_epochs: int,
                    total_steps: int | None = None) -> dict:
    """Lightning's `configure_optimizers` return value.

    name: sgd | adam | adamw (adam and adamw take `amsgrad`).
    schedule: none | step (lr · gamma^⌊epoch/step_size⌋, per epoch) | cosine (to 0 over max_epochs, per
    epoch) | cosine_step (to 0 over `total_steps` optimizer steps, per step: Davari et al.'s recipe).
    """
    if optim.name == "sgd":
        opt = torch.optim.SGD(params, lr=optim.lr, momentum=optim.momentum, nesterov=optim.nesterov,
                              weight_decay=optim.weight_decay)
    elif optim.name in ("adam", "adamw"):
        kind = torch.optim.Adam if optim.name == "adam" else torch.optim.AdamW
        opt = kind(params, lr=optim.lr, weight_decay=optim.weight_decay, amsgrad=optim.amsgrad)
    else:
        raise ValueError(f"unknown optimizer '{optim.name}' (sgd | adam | adamw)")
    if optim.schedule == "none":
        return {"optimizer": opt}
    interval = "epoch"
    if optim.schedule == "step":
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=optim.step_size, gamma=optim.gamma)
    elif optim.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max_epochs)
    elif optim.schedule == "cosine_step":
        if total_steps is None:
            raise ValueError("schedule 'cosine_step' needs the number of optimizer steps (total_steps)")
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(total_steps, 1))
        interval = "step"
    else:
        raise ValueError(f"unknown schedule '{optim.schedule}' (none | step | cosine | cosine_step)")
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": interval}}
