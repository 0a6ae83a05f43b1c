"""Download a torchvision dataset into `data.root` (only with data.download=true)."""

from pathlib import Path

from common.errors import UserError


def torchvision_download(dataset: str, root: Path, target: Path, hint: str) -> None:
    """Fetch torchvision's `dataset` ("MNIST", "CIFAR10") into `root`; any failure becomes a UserError.

    A no-op when verified files are already there.
    """
    import torchvision.datasets  # imported here: torchvision is slow to import and rarely needed

    try:
        getattr(torchvision.datasets, dataset)(str(root), download=True)
    except Exception as exc:  # any network / disk failure becomes a user-facing message
        raise UserError(
            f"Downloading {dataset} into {target} failed ({exc}). Check network access, or download "
            f"the files by hand and set data.download=false. {hint}"
        ) from exc
