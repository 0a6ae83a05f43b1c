"""Whether W&B logs online: `logger.wandb.mode` auto | online | offline, and where a key is found."""

from __future__ import annotations

import netrc
import os
from urllib.parse import urlparse

MODES = ("auto", "online", "offline")


def has_api_key() -> bool:
    """A W&B key is configured: WANDB_API_KEY, or the netrc entry `wandb login` writes for the W&B host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc().authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def logs_online(mode: str) -> bool:
    """auto: online when a key is configured, else offline (synced later with `wandb sync` or `repro report --sync`)."""
    return mode == "online" or (mode == "auto" and has_api_key())
