"""Atomic writes of run files (a temporary file next to the target, then a rename) and checkpoint loads that run no code.

Checkpoints, ``config.yaml``, ``hparams.yaml``, ``metrics.csv`` rewrites and sample grids are written this way, so
a kill or a full disk leaves the previous file, never a truncated one. Loads always pass ``weights_only=True``, so
no pickled code runs whatever the environment says.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator
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


class CheckpointSaveError(OSError):
    """A checkpoint could not be written (a full disk, a quota); the previous file at its path is intact."""


FULL_DISK = (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def atomic_path(path: _PATH) -> Iterator[Path]:
    """A temporary path next to ``path`` to write to; renamed over ``path`` when the block ends without an error.

    The file is flushed to disk before the rename (atomic within a filesystem), and removed when the block fails,
    so ``path`` holds the complete old or the complete new content, never a part.

    Args:
        path: The target file; its folder is created if needed.

    Yields:
        The temporary file's path (``.<name>.<pid>.tmp`` in the same folder).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        yield temporary
        with temporary.open("rb+") as file:
            os.fsync(file.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def atomic_write_text(path: _PATH, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_path`)."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def _is_full_disk(error: BaseException) -> bool:
    """Whether a failed write ran out of space: ``ENOSPC`` (or a quota), or torch's zip writer's short write."""
    for cause in (error, error.__context__, error.__cause__):
        if isinstance(cause, OSError) and cause.errno in FULL_DISK:
            return True
    return isinstance(error, RuntimeError) and "unexpected pos" in str(error)


def atomic_save(obj: Any, path: _PATH) -> None:
    """``torch.save`` to a local ``path`` atomically: a temporary file next to it, flushed, then renamed.

    Args:
        obj: What to save.
        path: The target file; its folder is created if needed.

    Raises:
        CheckpointSaveError: The disk (or quota) is full; the message names the folder and the space left, and
            says that the previous file at ``path`` is intact.
    """
    target = Path(path)
    try:
        with atomic_path(target) as temporary, temporary.open("wb") as file:
            torch.save(obj, file)
            file.flush()
    except (OSError, RuntimeError) as error:
        if not _is_full_disk(error):
            raise
        free = shutil.disk_usage(target.parent).free
        previous = (
            f"the previous {target.name} is intact"
            if target.is_file()
            else f"no earlier {target.name} was there"
        )
        raise CheckpointSaveError(
            errno.ENOSPC,
            f"Cannot save {target}: the disk holding {target.parent} is full "
            f"({free / 2**20:.1f} MiB free; {type(error).__name__}: {str(error).splitlines()[0][:120]}). Nothing "
            f"was written over it: {previous}. Free some space (or point --checkpoint.dirpath or the logger's "
            "save_dir at another disk) and resume with --ckpt_path last.",
        ) from error


def _is_local(path: _PATH) -> bool:
    return "://" not in str(path)
