"""Checkpoint helpers: safe loading, the newest ``last.ckpt`` of a folder, a clear error when one does not fit.

Every checkpoint is loaded by :func:`load_checkpoint`, with ``weights_only=True`` whatever the environment says
(``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` only overrides an omitted argument), so no pickled code runs.

Which checkpoint ``--ckpt_path last|auto`` resumes is decided in :mod:`src.utils.resume`.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

LAST_PATTERN = "last*.ckpt"  # ModelCheckpoint's `last.ckpt`, or `last-v1.ckpt` when the name was taken
LIGHTNING_CSV_LOGGERS = (
    "lightning.pytorch.loggers.CSVLogger",
    "lightning.pytorch.loggers.csv_logs.CSVLogger",
)


class CheckpointMismatchError(RuntimeError):
    """A checkpoint was saved by a model configured differently from the one being run."""


class CheckpointLoadError(RuntimeError):
    """A checkpoint file cannot be loaded: truncated, not a checkpoint, or holding more than tensors and plain types."""


def _unpickler_detail(error: BaseException) -> str:
    """The useful line of torch's ``weights_only`` refusal (``Unsupported global: GLOBAL io.open ...``)."""
    text = str(error)
    detail = text.split("WeightsUnpickler error:", 1)[-1].strip().splitlines()
    return detail[0].strip() if detail and detail[0].strip() else text.strip().splitlines()[0]


def load_checkpoint(path: str | Path, map_location: Any = "cpu", mmap: bool = False) -> dict[str, Any]:
    """Load a checkpoint file with ``weights_only=True``, failing with an error that names the file.

    The argument is passed explicitly, so ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` cannot turn it off and no pickled
    code runs, whoever wrote the file.

    Args:
        path: A local checkpoint file.
        map_location: As for :func:`torch.load`.
        mmap: Map the tensors instead of reading them (enough to check a file, or to read its metadata).

    Returns:
        The checkpoint's dict.

    Raises:
        FileNotFoundError: Nothing is at ``path``.
        IsADirectoryError: ``path`` is a folder; the message lists the checkpoints in it (and in its
            ``checkpoints/``).
        CheckpointLoadError: The file is truncated or corrupt, is not a PyTorch checkpoint, or holds objects other
            than tensors and plain types (unpickling it could run code).
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(directory_message(path))
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint file not found: {path}")
    try:
        try:
            checkpoint = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
        except RuntimeError as error:  # mmap needs the zip format: read the file plainly to say what it is
            if not (mmap and "mmap can only be used" in str(error)):
                raise
            checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        detail = _unpickler_detail(error)
        if "global" in detail.lower():
            raise CheckpointLoadError(
                f"Refused to load the checkpoint {path}: it holds objects other than tensors and plain types "
                f"({detail.split(' was not', 1)[0]}), and unpickling them could run code. Checkpoints are always "
                "loaded with weights_only=True; only a checkpoint written by src.train loads."
            ) from error
        raise CheckpointLoadError(f"Cannot read the checkpoint {path}: it is corrupt ({detail}).") from error
    except (RuntimeError, EOFError, OSError, KeyError, ValueError) as error:
        first = (str(error).strip().splitlines() or [""])[0].split(". ")[0][:160]
        raise CheckpointLoadError(
            f"Cannot read the checkpoint {path}: it is truncated, corrupt or not a PyTorch checkpoint "
            f"({type(error).__name__}: {first or 'no data'}). A checkpoint cut short by a crash or a full disk cannot "
            "be repaired; use an earlier one."
        ) from error
    if not isinstance(checkpoint, dict):
        raise CheckpointLoadError(
            f"{path} is not a Lightning checkpoint: it holds a {type(checkpoint).__name__}, not a dict."
        )
    return checkpoint


def directory_message(folder: Path, shown: int = 10) -> str:
    """Why a folder is not a checkpoint, and the checkpoints in it (or in its ``checkpoints/``) to pass instead."""
    found = sorted(folder.glob("*.ckpt")) + sorted(folder.glob("checkpoints/*.ckpt"))
    if not found:
        return f"{folder} is a directory, not a checkpoint file, and it holds no *.ckpt file (nor does its checkpoints/)"
    more = f" and {len(found) - shown} more" if len(found) > shown else ""
    listed = ", ".join(str(p) for p in found[:shown])
    return (
        f"{folder} is a directory, not a checkpoint file; pass one of the checkpoints in it: {listed}{more}"
    )


def newest_last_checkpoint(directories: list[Path]) -> Path | None:
    """The most recently written ``last*.ckpt`` in ``directories`` (``None`` when there is none)."""
    found = [
        path for directory in directories for path in Path(directory).glob(LAST_PATTERN) if path.is_file()
    ]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def logger_version(version_dir: str) -> int | str:
    """The ``version`` argument that makes a CSV/TensorBoard logger write into ``version_dir`` again."""
    match = re.fullmatch(r"version_(\d+)", version_dir)
    return int(match.group(1)) if match else version_dir


def check_checkpoint_fits(module: nn.Module, checkpoint: dict[str, Any], ckpt_path: Any = None) -> None:
    """Raise :class:`CheckpointMismatchError` naming the differences when ``checkpoint`` cannot load into ``module``.

    Compares parameter and buffer names and shapes before Lightning's strict ``load_state_dict`` fails with a
    long list, and says what the checkpoint was trained with (its model and data hyperparameters).
    """
    saved = checkpoint.get("state_dict")
    if not isinstance(saved, dict):
        return
    current = module.state_dict()
    missing = [k for k in current if k not in saved]
    unexpected = [k for k in saved if k not in current]
    reshaped = [
        f"{k}: {tuple(saved[k].shape)} in the checkpoint, {tuple(current[k].shape)} here"
        for k in current
        if k in saved and hasattr(saved[k], "shape") and tuple(saved[k].shape) != tuple(current[k].shape)
    ]
    if not (missing or unexpected or reshaped):
        return

    def listed(title: str, items: list[str]) -> str:
        more = f" and {len(items) - 3} more" if len(items) > 3 else ""
        return f"{title}: {'; '.join(items[:3])}{more}" if items else ""

    details = "; ".join(
        part
        for part in (
            listed("shapes differ", reshaped),
            listed("missing from the checkpoint", missing),
            listed("not in this model", unexpected),
        )
        if part
    )
    data = checkpoint.get("datamodule_hyper_parameters", {}) or {}
    data_args = ", ".join(f"{k}={v}" for k, v in data.items() if not k.startswith("_"))
    data_class = str(data.get("_class_path", "")).rsplit(".", 1)[-1]
    trained_on = f" It was trained on {data_class or 'data'}({data_args})." if data else ""
    raise CheckpointMismatchError(
        f"The checkpoint {ckpt_path or ''} was saved by a different model configuration than this run's "
        f"({details}).{trained_on} Resume with the configuration it was trained with: "
        "--config <its run directory>/config.yaml --ckpt_path <the checkpoint>."
    )
