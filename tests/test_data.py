"""Tests for common/data: readers on real-format tiny files, splits, errors, shuffling, sharding, resume."""

import gzip
import itertools
import pickle
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from common.data import DATASETS, TensorBatches, TensorDataModule, build_datamodule
from common.data.batches import epoch_seed, num_batches, random_crop_flip, shard
from common.data.sources import IMAGENET_MEAN, IMAGENET_STD, LUMA, MNIST_MEAN, MNIST_STD
from common.errors import UserError
from tests.datafiles import idx_bytes, write_cifar10_batches, write_cifar100_files, write_mnist_idx

DATA_DEFAULTS = {
    "name": "mnist5k",
    "root": "./data",
    "download": False,
    "batch_size": 128,
    "eval_batch_size": 1000,
    "val_size": 500,
    "test_size": 500,
    "split_seed": 0,
    "grayscale": False,
    "augment": False,
    "flatten": False,
    "limit_train": None,
    "per_class": None,
}


def data_cfg(**overrides: object) -> DictConfig:
    """A struct-mode ``data`` node like the one configs/defaults.yaml provides."""
    cfg = OmegaConf.create(DATA_DEFAULTS | overrides)
    OmegaConf.set_struct(cfg, True)
    return cfg


def fake_trainer(epoch: int = 0, rank: int = 0, world_size: int = 1) -> SimpleNamespace:
    """The few trainer attributes the datamodule reads, without a process group."""
    return SimpleNamespace(
        current_epoch=epoch,
        global_rank=rank,
        world_size=world_size,
        strategy=SimpleNamespace(root_device=torch.device("cpu")),
    )


def loaded(cfg: DictConfig, seed: int = 0) -> TensorDataModule:
    dm = build_datamodule(cfg, seed)
    dm.prepare_data()
    dm.setup("fit")
    return dm


@pytest.fixture(scope="module")
def mnist5k() -> TensorDataModule:
    return loaded(data_cfg())


def test_defaults_yaml_has_exactly_the_data_keys() -> None:
    defaults = Path(__file__).parents[1] / "configs" / "defaults.yaml"
    if not defaults.exists():
        pytest.skip("configs/defaults.yaml not written yet")
    assert set(OmegaConf.load(defaults).data) == set(DATA_DEFAULTS)


def test_unknown_name_lists_valid_names() -> None:
    assert DATASETS == ("mnist5k", "digits", "mnist", "cifar10", "cifar100")
    with pytest.raises(UserError, match="mnist5k, digits, mnist, cifar10, cifar100"):
        build_datamodule(data_cfg(name="imagenet"), 0)


# --- readers and splits -------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx(tmp_path: Path, gz: bool) -> None:
    raw = write_mnist_idx(tmp_path, n_train=64, n_test=32, gz=gz)
    dm = loaded(data_cfg(name="mnist", root=str(tmp_path), val_size=16))
    s = dm._loaded()
    assert (len(s.train), len(s.val), len(s.test)) == (48, 16, 32)
    assert s.train.x.shape == (48, 1, 28, 28) and s.train.x.dtype == torch.float32
    assert s.train.y.dtype == torch.int64 and s.train.y.min() >= 0 and s.train.y.max() <= 9
    assert dm.input_shape == (1, 28, 28) and dm.num_classes == 10
    # the test split is the official t10k file, in order: undoing the normalisation gives its bytes back
    suffix = ".gz" if gz else ""
    data = (raw / f"t10k-images-idx3-ubyte{suffix}").read_bytes()
    data = gzip.decompress(data) if gz else data
    images = np.frombuffer(data, np.uint8, offset=16).reshape(32, 1, 28, 28)
    pixels = (s.test.x * MNIST_STD[0] + MNIST_MEAN[0]) * 255
    torch.testing.assert_close(pixels, torch.tensor(images, dtype=torch.float32), atol=1e-3, rtol=0)


def test_cifar10_batches(tmp_path: Path) -> None:
    folder = write_cifar10_batches(tmp_path, n_per_batch=20)
    assert (folder / "batches.meta").is_file()
    dm = loaded(data_cfg(name="cifar10", root=str(tmp_path), val_size=10))
    s = dm._loaded()
    assert (len(s.train), len(s.val), len(s.test)) == (90, 10, 20)
    assert s.train.x.shape == (90, 3, 32, 32) and dm.input_shape == (3, 32, 32)
    assert set(torch.cat([s.train.y, s.val.y]).tolist()) == set(range(10))
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    pixels = (s.test.x * std + mean).clamp(0, 1)
    assert pixels.min() == 0 and pixels.max() == 1  # random uint8 pixels reach both ends of [0, 255]
    # the fill used for crop padding is black after normalisation
    torch.testing.assert_close(s.fill, -torch.tensor(IMAGENET_MEAN) / torch.tensor(IMAGENET_STD))


def test_cifar10_grayscale_and_flatten(tmp_path: Path) -> None:
    write_cifar10_batches(tmp_path, n_per_batch=20)
    rgb = loaded(data_cfg(name="cifar10", root=str(tmp_path), val_size=10))._loaded()
    gray = loaded(data_cfg(name="cifar10", root=str(tmp_path), val_size=10, grayscale=True, flatten=True))
    assert gray.input_shape == (32 * 32,)
    expected = (rgb.test.x * torch.tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
    torch.testing.assert_close(gray._loaded().test.x, expected)
    x, y = next(iter(gray.train_dataloader()))
    assert x.shape == (90, 1024) and y.shape == (90,)
    assert gray.train_tensors()[0].shape == (90, 1024)


def test_cifar100_files(tmp_path: Path) -> None:
    folder = write_cifar100_files(tmp_path, n_train=300, n_test=100)
    dm = loaded(data_cfg(name="cifar100", root=str(tmp_path), val_size=50))
    s = dm._loaded()
    assert (len(s.train), len(s.val), len(s.test)) == (250, 50, 100)
    assert dm.input_shape == (3, 32, 32) and dm.num_classes == 100
    # the fine labels, not the coarse ones, and the test split in file order with its pixels
    with (folder / "test").open("rb") as f:
        raw = pickle.load(f, encoding="bytes")
    assert s.test.y.tolist() == raw[b"fine_labels"]
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    pixels = (s.test.x * std + mean) * 255
    torch.testing.assert_close(pixels, torch.tensor(raw[b"data"].reshape(-1, 3, 32, 32), dtype=torch.float32),
                               atol=1e-3, rtol=0)


def test_cifar100_without_fine_labels_says_so(tmp_path: Path) -> None:
    path = write_cifar100_files(tmp_path) / "train"
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(UserError, match=r"CIFAR-100 file .*train has no fine_labels .*cifar-100-python"):
        loaded(data_cfg(name="cifar100", root=str(tmp_path), val_size=8))


def test_per_class_keeps_a_balanced_subset_in_permuted_order(mnist5k: TensorDataModule) -> None:
    full = mnist5k._loaded().train
    kept = loaded(data_cfg(per_class=50))._loaded()
    assert torch.bincount(kept.train.y).tolist() == [50] * 10
    # the first 50 of each class of the permuted split, in the same order; val and test untouched
    first = [i for i, c in enumerate(full.y.tolist()) if (full.y[:i] == c).sum() < 50]
    torch.testing.assert_close(kept.train.x, full.x[first])
    torch.testing.assert_close(kept.val.y, mnist5k._loaded().val.y)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"per_class": 1000}, r"per_class=1000 asks for 1000 .* class \d of data.name=mnist5k has only \d+"),
    ({"per_class": 0}, "must be null or a positive integer"),
    ({"per_class": 50, "limit_train": 100}, "set one of them"),
])
def test_bad_per_class_says_what_to_do(overrides: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        loaded(data_cfg(**overrides))


def test_mnist5k_splits_and_label_column(mnist5k: TensorDataModule) -> None:
    s = mnist5k._loaded()
    assert (len(s.train), len(s.val), len(s.test)) == (4000, 500, 500)
    assert s.train.x.shape[1:] == (1, 28, 28) and mnist5k.input_shape == (1, 28, 28)
    labels = torch.cat([s.train.y, s.val.y, s.test.y])
    assert torch.bincount(labels, minlength=10).tolist() == [500] * 10  # the label is the last column
    pixels = torch.cat([s.train.x, s.val.x, s.test.x]) * MNIST_STD[0] + MNIST_MEAN[0]
    assert pixels.min().item() == pytest.approx(0, abs=1e-6)
    assert pixels.max().item() == pytest.approx(1, abs=1e-6)
    assert abs(s.train.x.mean().item()) < 0.1 and abs(s.train.x.std().item() - 1) < 0.1
    # splits are disjoint: no image appears in two of them
    flat = torch.cat([s.train.x, s.val.x, s.test.x]).flatten(1)
    assert len(torch.unique(flat, dim=0)) == len(torch.unique(s.train.x.flatten(1), dim=0)) + 1000


def test_split_depends_only_on_split_seed(mnist5k: TensorDataModule) -> None:
    same = loaded(data_cfg(limit_train=100), seed=7)._loaded()
    other = loaded(data_cfg(split_seed=1))._loaded()
    assert torch.equal(same.val.y, mnist5k._loaded().val.y)
    assert torch.equal(same.train.x, mnist5k._loaded().train.x[:100])  # limit_train keeps the first n
    assert not torch.equal(other.val.x, mnist5k._loaded().val.x)


def test_limit_train_as_a_fraction_keeps_that_share(mnist5k: TensorDataModule) -> None:
    full = mnist5k._loaded()
    half = loaded(data_cfg(limit_train=0.5))._loaded()
    assert len(half.train.y) == round(len(full.train.y) / 2)
    assert torch.equal(half.train.x, full.train.x[: len(half.train.y)]) and torch.equal(half.test.y, full.test.y)
    assert len(loaded(data_cfg(name="digits", limit_train=1e-9))._loaded().train.y) == 1  # never empty


def test_digits() -> None:
    dm = loaded(data_cfg(name="digits", val_size=100, test_size=200))
    s = dm._loaded()
    assert (len(s.train), len(s.val), len(s.test)) == (1497, 100, 200)
    assert s.train.x.shape[1:] == (1, 8, 8) and dm.input_shape == (1, 8, 8)
    assert set(s.train.y.tolist()) == set(range(10))
    assert abs(s.train.x.mean().item()) < 0.1 and abs(s.train.x.std().item() - 1) < 0.1


# --- user errors --------------------------------------------------------------------------------------


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-7])


def _bad_magic(path: Path) -> None:
    path.write_bytes(b"\x00\x00\x0d\x03" + path.read_bytes()[4:])


MNIST_DAMAGE = {
    "missing": Path.unlink,
    "truncated": _truncate,
    "bad magic": _bad_magic,
    "wrong dims": lambda p: p.write_bytes(idx_bytes(np.zeros((4, 27, 28), np.uint8))),
}


@pytest.mark.parametrize("damage", MNIST_DAMAGE)
def test_mnist_damaged_file_names_it(tmp_path: Path, damage: str) -> None:
    path = write_mnist_idx(tmp_path) / "t10k-images-idx3-ubyte"
    MNIST_DAMAGE[damage](path)
    with pytest.raises(UserError, match="t10k-images-idx3-ubyte") as err:
        loaded(data_cfg(name="mnist", root=str(tmp_path), val_size=8))
    assert str(tmp_path) in str(err.value) and "data.download=true" in str(err.value)


def test_mnist_corrupt_gz_and_label_mismatch(tmp_path: Path) -> None:
    raw = write_mnist_idx(tmp_path, gz=True)
    (raw / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(UserError, match="train-labels-idx1-ubyte.gz"):
        loaded(data_cfg(name="mnist", root=str(tmp_path), val_size=8))
    (raw / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(5, np.uint8))))
    with pytest.raises(UserError, match="holds 5 labels"):
        loaded(data_cfg(name="mnist", root=str(tmp_path), val_size=8))


def _pickle_batch(path: Path, data: np.ndarray, labels: list[int]) -> None:
    path.write_bytes(pickle.dumps({b"data": data, b"labels": labels}))


CIFAR_DAMAGE = {
    "missing": Path.unlink,
    "truncated": _truncate,
    "garbage": lambda p: p.write_bytes(b"\x80\x04garbage"),
    "not a dict": lambda p: p.write_bytes(pickle.dumps([1, 2])),
    "wrong shape": lambda p: _pickle_batch(p, np.zeros((2, 9), np.uint8), [0, 1]),
    "bad labels": lambda p: _pickle_batch(p, np.zeros((2, 3072), np.uint8), [0, 10]),
}


@pytest.mark.parametrize("damage", CIFAR_DAMAGE)
def test_cifar_damaged_file_names_it(tmp_path: Path, damage: str) -> None:
    path = write_cifar10_batches(tmp_path) / "data_batch_3"
    CIFAR_DAMAGE[damage](path)
    with pytest.raises(UserError, match="data_batch_3") as err:
        loaded(data_cfg(name="cifar10", root=str(tmp_path), val_size=8))
    assert "REPRO_DATA" in str(err.value)


def test_download_failure_is_a_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets

    def offline(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no network")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    with pytest.raises(UserError, match="Downloading MNIST .* failed .*no network"):
        build_datamodule(data_cfg(name="mnist", root=str(tmp_path), download=True), 0).prepare_data()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"val_size": 1000, "test_size": 797}, "holds out 1797 of the 1797"),
        ({"val_size": -1}, "val_size=-1 must be a non-negative integer"),
        ({"limit_train": 2000}, r"limit_train=2000 must be null, an integer in 1\.\.797"),
        ({"limit_train": 1.5}, r"limit_train=1\.5 must be null, .* or a fraction in \(0, 1\]"),
    ],
)
def test_bad_sizes(overrides: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        loaded(data_cfg(name="digits", **overrides))


def test_val_size_checked_against_official_train_split(tmp_path: Path) -> None:
    write_mnist_idx(tmp_path, n_train=64)
    loaded(data_cfg(name="mnist", root=str(tmp_path), val_size=63, test_size=5000))  # test_size is unused
    with pytest.raises(UserError, match="val_size=64 holds out 64 of the 64"):
        loaded(data_cfg(name="mnist", root=str(tmp_path), val_size=64))


# --- batching -----------------------------------------------------------------------------------------


def _order(batches: TensorBatches) -> list[int]:
    return torch.cat([y for _, y in batches]).tolist()


def test_shuffle_is_a_function_of_seed_and_epoch() -> None:
    x, y = torch.zeros(100, 1, 2, 2), torch.arange(100)
    epoch = {"now": 0}

    def batches(seed: int) -> TensorBatches:
        return TensorBatches(x, y, 32, seed=seed, epoch=lambda: epoch["now"])

    first = _order(batches(0))
    assert sorted(first) == list(range(100)) and first != list(range(100))
    assert _order(batches(0)) == first  # a fresh loader (e.g. after a restart) repeats the epoch
    assert _order(batches(1)) != first
    epoch["now"] = 1
    assert _order(batches(0)) != first
    assert len({epoch_seed(s, e) for s, e in itertools.product(range(10), range(10))}) == 100


def test_epoch_is_read_when_the_pass_starts() -> None:
    x, y = torch.zeros(50, 1), torch.arange(50)
    epoch = {"now": 0}
    iterator = iter(TensorBatches(x, y, 50, seed=0, epoch=lambda: epoch["now"]))
    epoch["now"] = 3  # Lightning calls iter() before it restores the epoch from a checkpoint
    epoch_3 = _order(TensorBatches(x, y, 50, seed=0, epoch=lambda: 3))
    assert next(iterator)[1].tolist() == epoch_3
    assert _order(TensorBatches(x, y, 50, seed=0, epoch=lambda: 0)) != epoch_3


def test_a_pass_resumes_mid_epoch_from_its_state() -> None:
    # augmented, so a resumed pass must also replay the generator's draws for the batches it skips
    x, y, fill = torch.randn(100, 1, 4, 4), torch.arange(100), torch.zeros(1)

    def batches(epoch: int) -> TensorBatches:
        return TensorBatches(x, y, 16, seed=3, epoch=lambda: epoch, augment_fill=fill)

    whole = list(batches(2))
    interrupted = batches(2)
    iterator = iter(interrupted)
    for _ in range(3):
        next(iterator)
    state = interrupted.state_dict()
    assert state == {"epoch": 2, "batches": 3}
    resumed = batches(2)
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert len(rest) == len(whole) - 3
    for (xa, ya), (xb, yb) in zip(whole[3:], rest, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    later = batches(3)  # a state from another epoch (an end-of-epoch checkpoint) skips nothing
    later.load_state_dict({"epoch": 2, "batches": 7})
    assert len(list(later)) == len(whole)


def test_eval_order_and_partial_last_batch() -> None:
    batches = TensorBatches(torch.zeros(10, 1, 2, 2), torch.arange(10), 4)
    assert len(batches) == 3
    assert [y.tolist() for _, y in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_shard_arithmetic() -> None:
    indices = torch.arange(11)
    shards = [shard(indices, rank, 3).tolist() for rank in range(3)]
    assert shards == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    assert num_batches(11, 2, 3) == 2 and num_batches(11, 3, 3) == 1 and num_batches(11, 4, 1) == 3
    for n, world_size, batch_size in itertools.product([7, 64, 65], [1, 2, 3, 8], [1, 5, 16]):
        perm = torch.randperm(n)
        parts = [shard(perm, rank, world_size) for rank in range(world_size)]
        assert {len(p) for p in parts} == {n // world_size}
        assert len(set(torch.cat(parts).tolist())) == n // world_size * world_size  # disjoint
        assert len({num_batches(n, batch_size, world_size)}) == 1


def test_ranks_see_disjoint_equal_shares_of_one_permutation() -> None:
    x, y = torch.zeros(101, 1, 2, 2), torch.arange(101)
    ranks = [TensorBatches(x, y, 8, rank=r, world_size=4, seed=5, epoch=lambda: 2) for r in range(4)]
    assert {len(r) for r in ranks} == {4}  # 25 examples each -> 3 full batches and one of 1
    orders = [_order(r) for r in ranks]
    assert {len(o) for o in orders} == {25} and len(set(sum(orders, []))) == 100
    full = _order(TensorBatches(x, y, 8, seed=5, epoch=lambda: 2))
    assert orders[1] == full[1::4][:25]


def test_datamodule_shards_by_trainer_rank(mnist5k: TensorDataModule) -> None:
    seen = []
    for rank in range(2):
        mnist5k.trainer = fake_trainer(epoch=4, rank=rank, world_size=2)
        try:
            train, val = mnist5k.train_dataloader(), mnist5k.val_dataloader()
            assert (len(train), len(val)) == (16, 1)  # 2000 / 128 rounded up; 250 / 1000
            seen.append((_order(train), _order(val)))
        finally:
            mnist5k.trainer = None
    assert len(seen[0][0]) == len(seen[1][0]) == 2000 and len(seen[0][1]) == len(seen[1][1]) == 250
    assert seen[0][0] != seen[1][0]


def test_setup_is_idempotent_and_train_tensors_are_whole(mnist5k: TensorDataModule) -> None:
    x, y = mnist5k.train_tensors()
    mnist5k.setup("test")
    assert mnist5k.train_tensors()[0] is x and x.shape == (4000, 1, 28, 28) and y.shape == (4000,)
    assert mnist5k.test_tensors()[0].shape == (500, 1, 28, 28)


def test_use_before_setup_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError, match="setup"):
        build_datamodule(data_cfg(name="digits"), 0).train_tensors()


def test_random_crop_flip_is_a_crop_of_the_padded_image() -> None:
    x = torch.arange(2 * 2 * 5 * 5, dtype=torch.float32).view(2, 2, 5, 5) + 1
    fill = torch.tensor([-1.0, -2.0])
    out = random_crop_flip(x.repeat(8, 1, 1, 1), fill, torch.Generator().manual_seed(0), pad=2)
    assert out.shape == (16, 2, 5, 5)
    padded = fill.view(1, 2, 1, 1).expand(2, 2, 9, 9).clone()
    padded[:, :, 2:7, 2:7] = x
    crops = [padded[:, :, i : i + 5, j : j + 5] for i, j in itertools.product(range(5), range(5))]
    candidates = torch.stack(crops + [c.flip(-1) for c in crops], dim=1)  # (2, 50, C, H, W)
    matches = [(candidates[k % 2] == out[k]).flatten(1).all(1).nonzero().tolist() for k in range(16)]
    assert all(len(m) == 1 for m in matches)
    assert len({m[0][0] for m in matches}) > 4  # offsets and flips vary across the batch


def test_augmented_batches_keep_shapes_and_are_reproducible(tmp_path: Path) -> None:
    write_cifar10_batches(tmp_path, n_per_batch=20)
    cfg = data_cfg(name="cifar10", root=str(tmp_path), val_size=10, augment=True, batch_size=32)
    dm, plain = loaded(cfg), loaded(data_cfg(**(OmegaConf.to_container(cfg) | {"augment": False})))
    dm.trainer = plain.trainer = fake_trainer(epoch=1)
    first, again = list(dm.train_dataloader()), list(dm.train_dataloader())
    assert [x.shape for x, _ in first] == [(32, 3, 32, 32)] * 2 + [(26, 3, 32, 32)]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again, strict=True))
    for (x, y), (x_plain, y_plain) in zip(first, plain.train_dataloader(), strict=True):
        assert torch.equal(y, y_plain) and not torch.equal(x, x_plain)  # same order, images moved
    x, _ = next(iter(dm.val_dataloader()))
    assert torch.equal(x, dm._loaded().val.x)  # evaluation data is never augmented


# --- with a real Trainer ------------------------------------------------------------------------------


class Recorder(L.LightningModule):
    """A linear classifier that records every training batch's labels per epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(28 * 28, 10)
        self.seen: dict[int, list[list[int]]] = {}

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        self.seen.setdefault(self.current_epoch, []).append(y.tolist())
        return torch.nn.functional.cross_entropy(self.net(x), y)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val/acc", (self.net(x).argmax(1) == y).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(root: Path, run_dir: Path, max_epochs: int, ckpt_path: str | None = None) -> Recorder:
    torch.manual_seed(0)
    module = Recorder()
    checkpoints = ModelCheckpoint(dirpath=run_dir, monitor="val/acc", mode="max", save_last=True)
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=max_epochs,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[checkpoints],
        default_root_dir=run_dir,
    )
    dm = build_datamodule(data_cfg(name="mnist", root=str(root), val_size=16, batch_size=10, flatten=True), 3)
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)
    assert dm.train_tensors()[0].device == trainer.strategy.root_device
    return module


@pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty")
def test_resumed_training_sees_the_same_batches(tmp_path: Path) -> None:
    write_mnist_idx(tmp_path / "data", n_train=56)
    full = _fit(tmp_path / "data", tmp_path / "full", max_epochs=3)
    assert [len(b) for b in full.seen[0]] == [10, 10, 10, 10]  # 40 train examples, batch 10
    assert full.seen[0] != full.seen[1] != full.seen[2]
    _fit(tmp_path / "data", tmp_path / "cut", max_epochs=2)  # "killed" after epoch 1's checkpoint
    last = str(tmp_path / "cut" / "last.ckpt")
    resumed = _fit(tmp_path / "data", tmp_path / "cut", max_epochs=3, ckpt_path=last)
    assert list(resumed.seen) == [2] and resumed.seen[2] == full.seen[2]
    torch.testing.assert_close(resumed.net.weight, full.net.weight, rtol=0, atol=0)


def test_train_batches_with_other_labels_keep_the_same_images(tmp_path: Path) -> None:
    write_cifar10_batches(tmp_path, n_per_batch=8)
    dm = loaded(data_cfg(name="cifar10", root=str(tmp_path), val_size=8, batch_size=7, augment=True))
    _, y = dm.train_tensors()
    other = (y + 1) % 10
    for (x_a, y_a), (x_b, y_b) in zip(dm.train_dataloader(), dm.train_batches(labels=other), strict=True):
        torch.testing.assert_close(x_b, x_a)  # same order, same crops and flips
        torch.testing.assert_close(y_b, (y_a + 1) % 10)
    with pytest.raises(ValueError, match="one label per training example"):
        dm.train_batches(labels=other[:-1])
