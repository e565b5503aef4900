"""Checkpoint IO: atomic writes (a temporary file next to the target, then a rename) and loads that run no code.

Loads always pass ``weights_only=True``, so no pickled code runs whatever the environment says.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO
from typing_extensions import override

from src.utils.checkpoint import load_checkpoint


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose local saves are atomic: the file is complete or absent, never truncated.

    Lightning's own save writes into a temporary file in the system temp directory and moves it; when that
    directory is on another filesystem than the run (a node-local ``/tmp`` and a shared run directory), the
    move is a copy that a ``SIGKILL`` can cut short. Here the temporary file sits next to the target, is
    flushed to disk, then ``os.replace``-d over it (atomic within a filesystem). Remote paths (``s3://``...)
    keep Lightning's behaviour.

    Loads (``trainer.fit/test(ckpt_path=...)``) always use ``weights_only=True``, whatever the caller or the
    environment asks, and a truncated or unsafe file fails naming it (:func:`~src.utils.checkpoint.load_checkpoint`).
    """

    @override
    def load_checkpoint(
        self,
        path: _PATH,
        map_location: Any | None = lambda storage, loc: storage,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        if not _is_local(path):
            return super().load_checkpoint(path, map_location, weights_only=True)
        return load_checkpoint(path, map_location=map_location)

    @override
    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or not _is_local(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        atomic_save(checkpoint, path)


def atomic_save(obj: Any, path: _PATH) -> None:
    """``torch.save`` to a local ``path`` atomically: a temporary file next to it, flushed, then renamed.

    Args:
        obj: What to save.
        path: The target file; its folder is created if needed.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as file:
            torch.save(obj, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def _is_local(path: _PATH) -> bool:
    return "://" not in str(path)
