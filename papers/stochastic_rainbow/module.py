"""The stochastic-rainbow LightningModule: train with W_gen redrawn before every step, then evaluate samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from common.classifier import ImageClassifier
from common.config import flatten
from common.errors import UserError
from papers.stochastic_rainbow.layers import redraw_all, set_align_mode
from papers.stochastic_rainbow.resnet import StochasticResNet
from papers.stochastic_rainbow.study import fix_sample, sampling_study

# the config keys that decide a network's parameters and buffers: a checkpoint only loads into the same variant
VARIANT_KEYS = ("model.name", "model.depth", "model.width_scale", "model.conv", "factconv.channel", "factconv.rank")


def variant_of(config: DictConfig | dict) -> dict[str, Any]:
    flat = flatten(config)
    return {k: flat.get(k) for k in VARIANT_KEYS}


class StochasticRainbowModule(ImageClassifier):
    """Cross-entropy on the generated path. Before every training step every W_gen is redrawn from a generator
    seeded with (seed, step) on the training device, so a resumed run draws the same noise. `val/acc` and
    `test/acc` score one fixed sample each (`_fix_sample`); `analyze` runs the evaluation proper
    (`study.sampling_study`: 10 samples, head retraining, ensembles)."""

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        gen = torch.Generator(device=self.device).manual_seed(self.cfg.seed * 1_000_003 + self.global_step)
        redraw_all(self.net, gen)

    def _fix_sample(self) -> None:
        """Validation and test score one fixed sample (`study.fix_sample`: running alignment, BN re-estimated on
        `sampling.align_examples` training inputs); the BN statistics averaged over the training draws do not fit
        any one draw (scored that way, the digits fall to chance)."""
        if self.cfg.model.conv != "stochastic":
            return
        s = self.cfg.sampling
        x = self.trainer.datamodule.train_tensors()[0]
        x = x if s.align_examples is None else x[:s.align_examples]
        gen = torch.Generator(device=self.device).manual_seed(self.cfg.seed * 1_000_003 + self.global_step)
        fix_sample(self.net, lambda: x.split(s.batch_size), gen)

    def on_validation_epoch_start(self) -> None:
        self._fix_sample()

    def on_test_epoch_start(self) -> None:
        self._fix_sample()

    def on_validation_epoch_end(self) -> None:
        set_align_mode(self.net, "batch")

    def on_test_epoch_end(self) -> None:
        set_align_mode(self.net, "batch")

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = variant_of(checkpoint.get("hyper_parameters", {}).get("config", {}))
        ours = variant_of(self.cfg)
        if saved != ours:
            diff = "; ".join(f"{k}: {saved[k]!r} in the checkpoint, {ours[k]!r} here" for k in VARIANT_KEYS
                             if saved[k] != ours[k])
            raise UserError(f"This checkpoint holds another stochastic-rainbow variant ({diff}): its factors and "
                            "noise do not fit this network. Load it with its own config.")
        super().on_load_checkpoint(checkpoint)

    def analyze(self, datamodule: Any, run_dir: Path) -> dict[str, float]:
        if self.cfg.model.conv != "stochastic":  # the baselines have no noise to sample
            return {}
        return sampling_study(self.net, datamodule.train_tensors(), datamodule.test_tensors(), self.cfg.sampling,
                              self.cfg.seed, run_dir)


def build_net(cfg: DictConfig, input_shape: tuple[int, ...], num_classes: int) -> StochasticResNet:
    if cfg.model.name != "prebn_resnet":
        raise UserError(f"model.name='{cfg.model.name}': the stochastic rainbow experiments train the pre-BN "
                        "ResNets of the paper only (model.name=prebn_resnet, model.depth=9 | 18 | 34).")
    m, f = cfg.model, cfg.factconv
    return StochasticResNet(input_shape[0], num_classes, depth=m.depth, width_scale=m.width_scale, conv=m.conv,
                            channel=f.channel, rank=f.rank, reference_fraction=m.reference_fraction)


def build_module(cfg: DictConfig, datamodule: Any) -> StochasticRainbowModule:
    return StochasticRainbowModule(cfg, build_net(cfg, datamodule.input_shape, datamodule.num_classes))
