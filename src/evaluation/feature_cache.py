"""The disk cache of real-image features: one file per rank, named by everything the features depend on.

The key holds a fingerprint of the reference images themselves (a hash of their uint8 pixels, in their order),
the split and number of real images (for a readable name), the feature network (with a hash of its weights) and
the rank and world size. So a resumed run, ``python -m src.evaluate`` or another run on the same images reuses
the features (whatever the datamodule's batch size, loading mode or subset seed that chose them), and any
edited image gives another file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from src.utils.atomic_io import atomic_save

CACHE_FORMAT = 2  # raise it when the stored features change meaning


def cache_key(trainer: pl.Trainer, images: str, split: str, num_real: int, features: str) -> dict[str, Any]:
    """Everything the real features of this rank depend on.

    Args:
        trainer: The trainer (its global rank and world size).
        images: The fingerprint of all the reference images (:func:`src.evaluation.real_images.fingerprint`).
        split: The split: ``train``, ``val`` or ``test``.
        num_real: Real images over all ranks.
        features: The feature network's identity (``FeatureNet.identity``: name and weights hash).

    Returns:
        A JSON-serialisable dict.
    """
    return {
        "format": CACHE_FORMAT,
        "images": images,
        "split": split,
        "num_real": num_real,
        "features": features,
        "rank": trainer.global_rank,
        "world_size": trainer.world_size,
    }


def cache_file(root: str | Path, key: dict[str, Any]) -> Path:
    """The cache file of ``key`` under ``root``: a readable name plus a hash of the whole key."""
    digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    network = str(key["features"]).split(":")[0]
    name = f"real-{key['split']}-{key['num_real']}-{network}-{digest}"
    return Path(root) / f"{name}-rank{key['rank']}of{key['world_size']}.pt"


def default_cache_dir(trainer: pl.Trainer) -> str:
    """``<save_dir>/feature_cache`` of the first logger with a save_dir (shared by the runs of an experiment).

    Without such a logger, the trainer's ``default_root_dir`` takes its place.
    """
    for logger in trainer.loggers:
        save_dir = getattr(logger, "save_dir", None)
        if save_dir:
            return os.path.join(str(save_dir), "feature_cache")
    return os.path.join(trainer.default_root_dir, "feature_cache")


def load_features(path: Path) -> Tensor | None:
    """The cached features (N, D) on the CPU, or ``None`` when ``path`` does not exist."""
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)["features"]


def save_features(path: Path, features: Tensor, key: dict[str, Any]) -> None:
    """Write ``features`` (N, D) and their key to ``path`` atomically (a kill never leaves half a file)."""
    atomic_save({"features": features, "key": key}, path)
