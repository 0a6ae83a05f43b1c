"""Config composition and validation (OmegaConf only).

A run's config is composed, last wins:

    configs/defaults.yaml <- configs/<paper>/_base.yaml <- configs/<paper>/<experiment>.yaml
        <- configs/<paper>/<experiment>.<scale>.yaml (only when scale != smoke) <- command-line dotlist
        <- configs/<paper>/<experiment>.tiny.yaml (only with tiny=true)

`tiny=true` is the experiment at test size, on top of either scale: every loop of its training and analysis runs,
for a step or two on a few examples. The tiny overlay comes last, so it shrinks whatever the plan or the command
line asked for (the generated tests run every plan this way).

`_base.yaml` may add the paper's own keys; after it the config is in struct mode, so every later
layer can only set keys that exist. Unknown keys and mistyped values are reported before any work
with the nearest valid keys, as a `UserError`.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from common.errors import UserError
from common.wandb_mode import MODES as WANDB_MODES

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
# a paper whose configs live outside configs/<paper>/ (the tests' toy paper): paper -> its config folder
CONFIG_DIRS: dict[str, Path] = {}
SCALES = ("smoke", "paper")
# keys that say where/how a run is shown or placed, not what it computes: they never change a run's identity.
# The device and node counts are placement: like `trainer.devices=auto`, they follow the machine or the Slurm
# allocation (the launcher sets them from it), so a run started under Slurm is found again by a local command.
PRESENTATION_KEYS = ("run.", "logger.", "trainer.enable_progress_bar", "trainer.devices", "trainer.num_nodes")
# Lightning accepts an int or a string here ("auto" or 2 devices; "bf16-mixed" or 32)
INT_OR_STR_KEYS = ("trainer.devices", "trainer.precision")


def config_dir(paper: str) -> Path:
    """`configs/<paper>/`, where a paper's `_base.yaml`, experiments and overlays live."""
    return CONFIG_DIRS.get(paper, CONFIG_DIR / paper)


def experiment_names(paper: str) -> list[str]:
    """Experiments of a paper = `configs/<paper>/<name>.yaml` (not `_*.yaml`, not scale or tiny overlays)."""
    folder = config_dir(paper)
    return sorted(p.stem for p in folder.glob("*.yaml") if not p.stem.startswith("_") and "." not in p.stem)


def flatten(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dict/DictConfig -> {"a.b.c": leaf} (lists are leaves)."""
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=False)
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def parse_overrides(overrides: Iterable[str]) -> dict[str, Any]:
    """`["a.b=1", "c=x"]` -> {"a.b": 1, "c": "x"}, values parsed as YAML (as OmegaConf does)."""
    items = list(overrides)
    for item in items:
        if "=" not in item or item.startswith("="):
            raise UserError(f"Cannot read the override '{item}': overrides are key=value, e.g. trainer.max_epochs=5.")
    try:
        return flatten(OmegaConf.from_dotlist(items))
    except OmegaConfBaseException as err:
        raise UserError(f"Cannot parse the overrides {items}: {err}") from None


def _unknown_key_error(key: str, valid: Iterable[str], where: str) -> UserError:
    valid = list(valid)
    near = difflib.get_close_matches(key, valid, n=3, cutoff=0.6)
    if not near:  # a wrong group name: match on the last component
        leaf = key.rsplit(".", 1)[-1]
        near = [k for k in valid if k.rsplit(".", 1)[-1] == leaf][:3]
    hint = f": did you mean {' or '.join(near)}?" if near else "."
    return UserError(f"Unknown config key '{key}' in {where}{hint} `repro run <paper>/<experiment> --show` "
                     "prints every valid key.")


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _compatible(old: Any, new: Any) -> bool:
    if old is None or new is None:
        return True
    if isinstance(old, str) and isinstance(new, str):
        return True
    if isinstance(old, bool) or isinstance(new, bool):
        return isinstance(old, bool) and isinstance(new, bool)
    if isinstance(old, float):
        return isinstance(new, int | float)
    if isinstance(old, int):
        return isinstance(new, int)
    if isinstance(old, list):
        return isinstance(new, list)
    return isinstance(new, type(old))


def check_layer(base: DictConfig, layer: dict[str, Any], where: str) -> None:
    """Every key of `layer` must exist in `base`, with a value of a compatible type."""
    known = flatten(base)
    groups = {k.rsplit(".", i)[0] for k in known for i in range(1, k.count(".") + 1)}
    for key, value in layer.items():
        if key in groups:
            raise UserError(f"'{key}' in {where} is a group, not a value: set one of its keys, e.g. "
                            f"{next(k for k in known if k.startswith(key + '.'))}=...")
        if key not in known:
            raise _unknown_key_error(key, known, where)
        if key in INT_OR_STR_KEYS and isinstance(value, int | str) and not isinstance(value, bool):
            continue
        if not _compatible(known[key], value):
            raise UserError(f"Config key '{key}' in {where} got {value!r} ({_type_name(value)}), "
                            f"expected {_type_name(known[key])} like the default {known[key]!r}.")


def _load(path: Path) -> DictConfig:
    try:
        return OmegaConf.load(path)
    except (OSError, OmegaConfBaseException, ValueError) as err:
        raise UserError(f"Cannot read the config file {path}: {err}") from None


def _merge_checked(base: DictConfig, layer: DictConfig | dict, where: str) -> DictConfig:
    check_layer(base, flatten(layer), where)
    merged = OmegaConf.merge(base, layer)
    OmegaConf.set_struct(merged, True)
    return merged


def compose(paper: str, experiment: str, overrides: Iterable[str] = ()) -> DictConfig:
    """The resolved config of one run (struct mode), or a UserError before any work."""
    overrides = list(overrides)
    cli = parse_overrides(overrides)
    scale = cli.get("scale", "smoke")
    if scale not in SCALES:
        raise UserError(f"Unknown scale '{scale}': use one of {', '.join(SCALES)}.")
    folder = config_dir(paper)
    cfg = OmegaConf.merge(_load(CONFIG_DIR / "defaults.yaml"), _load(folder / "_base.yaml"))
    OmegaConf.set_struct(cfg, True)
    cfg = _merge_checked(cfg, _load(folder / f"{experiment}.yaml"), f"configs/{paper}/{experiment}.yaml")
    if scale != "smoke":
        overlay = folder / f"{experiment}.{scale}.yaml"
        if not overlay.exists():
            scales = [s for s in SCALES if s == "smoke" or (folder / f"{experiment}.{s}.yaml").exists()]
            raise UserError(f"{paper}/{experiment} has no {scale}-scale config ({overlay.name}); "
                            f"scales available: {', '.join(scales)}.")
        cfg = _merge_checked(cfg, _load(overlay), f"configs/{paper}/{overlay.name}")
    cfg = _merge_checked(cfg, OmegaConf.from_dotlist(overrides), "the command line")
    if cfg.tiny:
        tiny = folder / f"{experiment}.tiny.yaml"
        if not tiny.exists():
            raise UserError(f"{paper}/{experiment} has no test-size overlay ({tiny.name}): tiny=true needs one.")
        cfg = _merge_checked(cfg, _load(tiny), f"configs/{paper}/{tiny.name}")
    try:
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as err:
        raise UserError(f"Cannot resolve the config of {paper}/{experiment}: {err}") from None
    if cfg.logger.wandb.mode not in WANDB_MODES:
        raise UserError(f"logger.wandb.mode='{cfg.logger.wandb.mode}': use one of {', '.join(WANDB_MODES)}.")
    if cfg.run.id is None:
        cfg.run.id = run_id_from(cli)
    return cfg


def run_id_from(overrides: dict[str, Any]) -> str:
    """A stable, readable run id from the overrides that change what a run computes.

    The same overrides give the same id, so running the same command again resumes that run.
    """
    parts = [f"{k}={v}" for k, v in sorted(overrides.items()) if not k.startswith(PRESENTATION_KEYS)]
    if not parts:
        return "default"
    ident = ",".join(parts).replace("/", "_").replace(" ", "")
    if len(ident) > 80:
        ident = ident[:60] + "-" + hashlib.sha1(ident.encode()).hexdigest()[:10]
    return ident


def identity(cfg: DictConfig) -> dict[str, Any]:
    """The part of a config that decides a run's result (compared before a run dir is reused)."""
    return {k: v for k, v in flatten(cfg).items() if not k.startswith(PRESENTATION_KEYS)}
