"""Finding the checkpoint to resume from, and a clear error when it does not fit the configured model."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from torch import nn

LAST_PATTERN = "last*.ckpt"  # ModelCheckpoint's `last.ckpt`, or `last-v1.ckpt` when the name was taken
LIGHTNING_CSV_LOGGERS = (
    "lightning.pytorch.loggers.CSVLogger",
    "lightning.pytorch.loggers.csv_logs.CSVLogger",
)


class CheckpointMismatchError(RuntimeError):
    """A checkpoint was saved by a model configured differently from the one being run."""


def newest_last_checkpoint(directories: list[Path]) -> Path | None:
    """The most recently written ``last*.ckpt`` in ``directories`` (``None`` when there is none)."""
    found = [
        path for directory in directories for path in Path(directory).glob(LAST_PATTERN) if path.is_file()
    ]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def last_checkpoint_of_runs(save_dir: str | Path, name: str) -> tuple[Path, str] | None:
    """The newest ``last*.ckpt`` under ``<save_dir>/<name>/<version>/checkpoints/`` and that version's name.

    This is where Lightning's ``ModelCheckpoint`` writes when its ``dirpath`` is unset and the first logger
    has this ``save_dir`` and ``name`` (CSV and TensorBoard: ``version_N``; W&B: the run id).
    """
    root = Path(save_dir) / str(name)
    path = newest_last_checkpoint(sorted(root.glob("*/checkpoints")))
    return (path, path.parent.parent.name) if path is not None else None


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


def _first_logger(logger: Any) -> Any:
    if isinstance(logger, (list, tuple)):
        return logger[0] if logger else None
    return logger


def resolve_last_checkpoint(config: Any) -> Path | None:
    """Turn ``ckpt_path: last`` into the newest ``last*.ckpt`` of this configuration's runs, in place.

    Lightning's own ``"last"`` only looks in the directory of the run being started, which is a fresh
    ``version_N``; this looks where earlier runs of the same configuration wrote, in this order:

    - ``checkpoint.dirpath`` when it is set;
    - ``<save_dir>/<name>/*/checkpoints/`` of the first logger (CSV and TensorBoard: ``name``; W&B: ``project``),
      and the logger's ``version`` is set to the found run's, so the resumed run logs into the same directory
      (and the same W&B run); Lightning's ``CSVLogger`` becomes
      :class:`~src.utils.csv_logger.ResumableCSVLogger`, which appends to ``metrics.csv`` instead of deleting it;
    - ``<default_root_dir>/checkpoints/`` without a logger.

    Args:
        config: The parsed LightningCLI config (a jsonargparse ``Namespace``).

    Returns:
        The checkpoint found (also written to ``config.ckpt_path``), or ``None`` when ``ckpt_path`` is not "last".

    Raises:
        FileNotFoundError: No ``last*.ckpt`` exists where the run would have written one.
    """
    if config.get("ckpt_path") != "last":
        return None
    trainer = config.trainer
    root = Path(trainer.get("default_root_dir") or os.getcwd())
    dirpath = config.get("checkpoint.dirpath") if "checkpoint" in config else None
    logger = _first_logger(trainer.get("logger"))
    found: Path | None = None
    version: str | None = None
    if dirpath:
        searched = f"{dirpath}/{LAST_PATTERN}"
        found = newest_last_checkpoint([Path(dirpath)])
    elif logger is None or logger is False:
        searched = f"{root / 'checkpoints'}/{LAST_PATTERN}"
        found = newest_last_checkpoint([root / "checkpoints"])
    else:
        class_path = "" if logger is True else str(logger.get("class_path", ""))
        init = None if logger is True else logger.get("init_args")
        if class_path.endswith("WandbLogger"):
            name = (init and init.get("project")) or os.environ.get("WANDB_PROJECT", "lightning_logs")
        else:
            name = (init and init.get("name")) or "lightning_logs"
        save_dir = Path((init and init.get("save_dir")) or root)
        searched = f"{save_dir / str(name)}/*/checkpoints/{LAST_PATTERN}"
        hit = last_checkpoint_of_runs(save_dir, str(name))
        if hit is not None:
            found, version = hit
            if init is not None and "version" in init:
                init.version = version if class_path.endswith("WandbLogger") else logger_version(version)
            if class_path in LIGHTNING_CSV_LOGGERS:  # Lightning's CSVLogger would delete metrics.csv
                logger.class_path = "src.utils.csv_logger.ResumableCSVLogger"
    if found is None:
        raise FileNotFoundError(
            f"--ckpt_path last: no checkpoint matches {searched}. Start the run without --ckpt_path, or pass a "
            "checkpoint file (--ckpt_path path/to/file.ckpt)."
        )
    config.ckpt_path = str(found)
    return found
