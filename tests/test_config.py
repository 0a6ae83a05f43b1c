"""Config composition: every experiment composes; unknown keys and bad types fail before any work."""

from __future__ import annotations

import pytest

from common.config import compose, run_id_from
from common.errors import UserError
from common.registry import discover


@pytest.mark.parametrize(("paper", "experiment"), [(p, e) for p, s in discover().items() for e in s.experiments])
def test_every_experiment_composes_in_struct_mode(paper: str, experiment: str) -> None:
    cfg = compose(paper, experiment, [])
    assert cfg.run.id == "default"
    with pytest.raises(Exception, match="not in struct"):
        cfg.not_a_key = 1


def test_unknown_key_names_the_nearest_valid_key() -> None:
    with pytest.raises(UserError, match=r"did you mean trainer\.max_epochs"):
        compose("rainbow", "mlp", ["trainer.max_epochz=3"])


def test_unknown_key_in_a_group() -> None:
    with pytest.raises(UserError, match="Unknown config key 'model.widht'.*model.width"):
        compose("rainbow", "mlp", ["model.widht=3"])


@pytest.mark.parametrize(("override", "expected"), [
    ("trainer.max_epochs=abc", "expected int"),
    ("optim.lr=fast", "expected float"),
    ("trainer.deterministic=3", "expected bool"),
])
def test_wrong_type_names_key_value_and_expected_type(override: str, expected: str) -> None:
    key, value = override.split("=")
    with pytest.raises(UserError, match=rf"'{key}'.*{value}.*{expected}"):
        compose("rainbow", "mlp", [override])


def test_int_accepted_for_float_and_null_default_accepts_values() -> None:
    cfg = compose("rainbow", "mlp", ["optim.lr=1", "data.limit_train=100"])
    assert cfg.optim.lr == 1 and cfg.data.limit_train == 100


def test_group_is_not_a_value() -> None:
    with pytest.raises(UserError, match="is a group"):
        compose("rainbow", "mlp", ["trainer=3"])


def test_malformed_override() -> None:
    with pytest.raises(UserError, match="key=value"):
        compose("rainbow", "mlp", ["trainer.max_epochs"])


def test_layers_compose_in_order() -> None:
    smoke = compose("rainbow", "mlp", [])
    paper = compose("rainbow", "mlp", ["scale=paper"])
    cli = compose("rainbow", "mlp", ["scale=paper", "trainer.max_epochs=7"])
    assert smoke.data.name == "mnist5k" and paper.data.name == "cifar10" and paper.data.grayscale
    assert (smoke.trainer.max_epochs, paper.trainer.max_epochs, cli.trainer.max_epochs) == (10, 5, 7)


def test_unknown_scale_and_missing_overlay() -> None:
    with pytest.raises(UserError, match="Unknown scale"):
        compose("rainbow", "mlp", ["scale=huge"])


def test_run_id_is_stable_and_ignores_presentation_keys() -> None:
    a = run_id_from({"model.width": 64, "seed": 1, "run.root": "/x", "trainer.enable_progress_bar": False})
    assert a == run_id_from({"seed": 1, "model.width": 64}) == "model.width=64,seed=1"
    assert run_id_from({}) == "default"
    assert len(run_id_from({f"k{i}": "v" * 20 for i in range(10)})) <= 80
