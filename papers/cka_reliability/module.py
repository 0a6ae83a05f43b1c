"""The CKA paper's trained-network experiments; `study` in the config picks one:

- translation (Sec. 4.2, Fig. 4c): train a classifier, then translate its last hidden features;
- early_layers (Sec. 4.1, Fig. 2): generalising / memorising / random nets, CKA between their blocks;
- manipulation (Sec. 4.3, Figs 5-7): train a net, then fine-tune copies toward target CKA maps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from common.classifier import ImageClassifier
from common.errors import UserError
from common.layerwise import correct
from common.metrics.cka import layer_extractor
from common.models import build_model
from common.outcomes import save_outcomes
from papers.cka_reliability.early_layers import EarlyLayersModule
from papers.cka_reliability.manipulation import ManipulationModule
from papers.cka_reliability.nets import draw_seed
from papers.cka_reliability.translation import translation_study


class TranslationModule(ImageClassifier):
    """Cross-entropy training; `analyze` saves the net's per-example test correctness (variant "net") and runs
    the Fig. 4c translation study on the output of `translation.layer` (the last hidden features)."""

    @torch.no_grad()
    def analyze(self, datamodule: Any, run_dir: Path) -> dict[str, float]:
        save_outcomes(run_dir, {"net": correct(self.net, *datamodule.test_tensors(), self.cfg.data.eval_batch_size)})
        self.net.eval()
        x, y = datamodule.train_tensors()
        extract = layer_extractor(self.net, [self.cfg.translation.layer])
        features = torch.cat([extract(xb)[0].flatten(1) for xb in x.split(self.cfg.data.eval_batch_size)])
        return translation_study(features, y, self.cfg.translation, run_dir / "figures",
                                 draw_seed(self.cfg.translation.point_seed, self.cfg.seed))


def build_module(cfg: DictConfig, datamodule: Any) -> Any:
    def net() -> torch.nn.Module:
        return build_model(cfg.model, datamodule.input_shape, datamodule.num_classes)

    def check_layers(model: torch.nn.Module, key: str, names: list[str], extractor: str = "hooks") -> None:
        try:
            layer_extractor(model, names, extractor)
        except ValueError as err:
            raise UserError(f"{key}: {err}. Fix it in the config.") from None

    if cfg.study == "translation":
        check_layers(model := net(), "translation.layer", [cfg.translation.layer])
        return TranslationModule(cfg, model)
    if cfg.study == "early_layers":
        trained = net()
        check_layers(trained, "early_layers.layers", list(cfg.early_layers.layers), cfg.early_layers.extractor)
        with torch.random.fork_rng():  # the random net's own seed, the global stream left as it was
            torch.manual_seed(draw_seed(cfg.early_layers.random_seed, cfg.seed))
            fresh = net()
        return EarlyLayersModule(cfg, trained, fresh)
    if cfg.study == "manipulation":
        mcfg = cfg.manipulation
        check_layers(net(), "manipulation.layers / manipulation.classifier", [*mcfg.layers, mcfg.classifier],
                     mcfg.extractor)
        return ManipulationModule(cfg, net)
    raise UserError(f"Unknown study '{cfg.study}' for cka_reliability (translation | early_layers | manipulation).")
