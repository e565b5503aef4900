"""Which checkpoint ``--ckpt_path last|auto|FILE`` resumes: only one saved by a run configured as this one.

Every checkpoint the CLI writes holds the run's resolved config (:data:`RUN_CONFIG_KEY`, YAML text; older
checkpoints fall back to ``<run>/config.yaml``). A checkpoint is resumed only when that config equals this
run's, except for the settings in :data:`MAY_CHANGE_ON_RESUME`: how long to train, where and how often to save,
what to display; and the device or node count when the global batch stays the same. Any other difference (a
learning rate, the precision, the data) is refused with the list of differences, because the restored
optimizers, schedulers and counters would silently keep the old values.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch.plugins.environments import SLURMEnvironment
from lightning.pytorch.utilities import rank_zero_info

from src.utils.checkpoint import (
    LAST_PATTERN,
    LIGHTNING_CSV_LOGGERS,
    CheckpointLoadError,
    CheckpointMismatchError,
    load_checkpoint,
    logger_version,
)
from src.utils.topology import TOPOLOGY, topology_may_change

RUN_CONFIG_KEY = "run_config"  # the run's resolved config as YAML text, in every checkpoint the CLI writes
RESUME_MODES = ("last", "auto")
RUN_LENGTH = re.compile(
    r"model\.init_args\.max_generator_steps|trainer\.(max|min)_(epochs|steps)|trainer\.max_time"
)
# Settings a resumed run may change: the run length, where and how often it saves, logs and displays.
MAY_CHANGE_ON_RESUME = re.compile(
    rf"{RUN_LENGTH.pattern}|ckpt_path|test_finished|config|trainer\.default_root_dir"
    r"|trainer\.logger(\.\d+)?\.init_args\.(version|save_dir)|trainer\.(log_every_n_steps|enable_progress_bar)"
    r"|trainer\.enable_model_summary|(checkpoint|preemption|samples)\..*"
)
CSV_LOGGER = "lightning.pytorch.loggers.CSVLogger"
RESUMABLE_CSV_LOGGER = "src.utils.csv_logger.ResumableCSVLogger"


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys of a nested config (``{"a": {"b": 1}}`` -> ``{"a.b": 1}``); lists of mappings by index."""
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, list) and any(isinstance(item, dict) for item in tree):
        items = ((str(i), item) for i, item in enumerate(tree))
    else:
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in items:
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _comparable(config: dict[str, Any], ignore_seed: bool) -> dict[str, Any]:
    flat = {}
    for key, value in flatten(config).items():
        if key == "seed_everything":
            if ignore_seed:
                continue
        elif MAY_CHANGE_ON_RESUME.fullmatch(key) and not RUN_LENGTH.fullmatch(key):
            continue
        if re.fullmatch(r"trainer\.logger(\.\d+)?\.class_path", key) and value == RESUMABLE_CSV_LOGGER:
            value = CSV_LOGGER  # a resumed run's CSVLogger became ResumableCSVLogger
        flat[key] = CSV_LOGGER if value in LIGHTNING_CSV_LOGGERS else value
    return flat


def config_differences(
    saved: dict[str, Any], current: dict[str, Any], ignore_seed: bool = False
) -> tuple[list[str], list[str]]:
    """What differs between a saved run config and this run's.

    The device and node counts (and the DDP strategy they choose) may change when the global batch stays the
    same: ``data.global_batch_size`` is set, or the number of processes is unchanged.

    Args:
        saved: The run config of the checkpoint (a parsed ``config.yaml``).
        current: This run's config, in the same form.
        ignore_seed: This run asked for a random seed (``seed_everything: true``), so any saved seed fits.

    Returns:
        ``(differences, allowed_changes)``: lines ``"key: <saved> in the run, <current> now"``; the first
        list holds the settings that must match, the second the run length and device count, which may change.
    """
    old, new = _comparable(saved, ignore_seed), _comparable(current, ignore_seed)
    lines: dict[bool, list[str]] = {True: [], False: []}
    changed = [
        key for key in sorted(old.keys() | new.keys()) if old.get(key, "<unset>") != new.get(key, "<unset>")
    ]
    topology = [key for key in changed if TOPOLOGY.fullmatch(key)]
    topology_ok = bool(topology) and topology_may_change(old, new, topology)
    for key in changed:
        line = f"{key}: {old.get(key, '<unset>')!r} in the run, {new.get(key, '<unset>')!r} now"
        if topology and key == topology[0] and not topology_ok:
            line += (
                " (the global batch changes with the device count: set data.global_batch_size to resume on "
                "another number of devices or nodes)"
            )
        lines[bool(RUN_LENGTH.fullmatch(key)) or (key in topology and topology_ok)].append(line)
    return lines[False], lines[True]


def read_run_config(ckpt: Path) -> dict[str, Any] | None:
    """The run config saved with ``ckpt``, else its run directory's ``config.yaml``; ``None`` when neither exists."""
    try:  # mmap: the tensors are not read
        checkpoint = load_checkpoint(ckpt, mmap=True)
    except (CheckpointLoadError, OSError):  # unreadable or truncated: it cannot be shown to match
        checkpoint = None
    text = checkpoint.get(RUN_CONFIG_KEY) if isinstance(checkpoint, dict) else None
    if isinstance(text, str):
        return yaml.safe_load(text)
    config_file = ckpt.parent.parent / "config.yaml"
    if ckpt.parent.name == "checkpoints" and config_file.is_file():
        return yaml.safe_load(config_file.read_text())
    return None


def _first_logger(logger: Any) -> Any:
    if isinstance(logger, (list, tuple)):
        return logger[0] if logger else None
    return logger


def _candidates(config: Any) -> tuple[list[Path], str, Any]:
    """Every ``last*.ckpt`` where this configuration's runs write, newest first; the place searched; the logger.

    - ``checkpoint.dirpath`` when it is set;
    - ``<save_dir>/<name>/*/checkpoints/`` of the first logger (CSV and TensorBoard: ``name``; W&B: ``project``);
    - ``<default_root_dir>/checkpoints/`` without a logger.
    """
    trainer = config.trainer
    root = Path(trainer.get("default_root_dir") or os.getcwd())
    dirpath = config.get("checkpoint.dirpath") if "checkpoint" in config else None
    logger = _first_logger(trainer.get("logger"))
    if dirpath:
        folders, searched, logger = [Path(dirpath)], f"{dirpath}/{LAST_PATTERN}", None
    elif logger is None or logger is False:
        folders, searched, logger = [root / "checkpoints"], f"{root / 'checkpoints'}/{LAST_PATTERN}", None
    else:
        class_path = "" if logger is True else str(logger.get("class_path", ""))
        init = None if logger is True else logger.get("init_args")
        if class_path.endswith("WandbLogger"):
            name = (init and init.get("project")) or os.environ.get("WANDB_PROJECT", "lightning_logs")
        else:
            name = (init and init.get("name")) or "lightning_logs"
        runs = Path((init and init.get("save_dir")) or root) / str(name)
        folders, searched = sorted(runs.glob("*/checkpoints")), f"{runs}/*/checkpoints/{LAST_PATTERN}"
    found = [path for folder in folders for path in folder.glob(LAST_PATTERN) if path.is_file()]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True), searched, logger


def _log_into_run(logger: Any, ckpt: Path) -> None:
    """Make the logger write into the run directory of ``ckpt`` (``<save_dir>/<name>/<version>/checkpoints``)."""
    if logger is None or logger is True:
        return
    class_path, init = str(logger.get("class_path", "")), logger.get("init_args")
    version = ckpt.parent.parent.name
    if init is not None and "version" in init:
        init.version = version if class_path.endswith("WandbLogger") else logger_version(version)


def use_resumable_csv_logger(config: Any) -> None:
    """Make every Lightning ``CSVLogger`` of the config a :class:`~src.utils.csv_logger.ResumableCSVLogger`, in place.

    It keeps ``metrics.csv`` when a run resumes into its directory, and writes ``hparams.yaml`` atomically.
    """
    loggers = config.trainer.get("logger")
    for logger in loggers if isinstance(loggers, (list, tuple)) else [loggers]:
        if (
            logger is not None
            and not isinstance(logger, bool)
            and logger.get("class_path") in LIGHTNING_CSV_LOGGERS
        ):
            logger.class_path = RESUMABLE_CSV_LOGGER


def slurm_requeue_checkpoint(config: Any) -> Path | None:
    """Lightning's SLURM requeue checkpoint: the newest ``hpc_ckpt_N.ckpt`` in ``default_root_dir``, under SLURM.

    Lightning itself resumes it whenever ``ckpt_path`` is unset; ``None`` outside SLURM or when there is none.
    """
    if not SLURMEnvironment.detect():
        return None
    root = Path(config.trainer.get("default_root_dir") or os.getcwd())
    found = [
        (int(m.group(1)), p)
        for p in root.glob("hpc_ckpt_*.ckpt")
        if (m := re.fullmatch(r"hpc_ckpt_(\d+)\.ckpt", p.name))
    ]
    return max(found)[1] if found else None


def _listed(lines: list[str], limit: int = 12) -> str:
    more = f"; and {len(lines) - limit} more" if len(lines) > limit else ""
    return "; ".join(lines[:limit]) + more


def check_resumed_config(ckpt: Path, current: dict[str, Any], ignore_seed: bool = False) -> None:
    """Refuse to resume ``ckpt`` with settings other than its run's (but the run length may change).

    Raises:
        CheckpointMismatchError: Listing every difference. Checkpoints without a saved config pass.
    """
    saved = read_run_config(ckpt)
    if saved is None:
        return
    differences, length = config_differences(saved, current, ignore_seed)
    if differences:
        raise CheckpointMismatchError(
            f"--ckpt_path {ckpt} was saved by a run with other settings: {_listed(differences)}. Resuming restores "
            "that run's optimizers, schedulers and counters, so the new values would not take effect. Resume with "
            "the run's own settings (--config <its run directory>/config.yaml), or start a new run."
        )
    if length:
        rank_zero_info(f"Resuming {ckpt} with a new run length or device count: {_listed(length)}.")


def resolve_resume(config: Any, current: dict[str, Any], ignore_seed: bool = False) -> Path | None:
    """Resolve ``--ckpt_path last`` or ``auto`` in place, resuming only a run configured as this one.

    - ``last``: the newest ``last*.ckpt`` (:func:`_candidates`) whose run config matches this one (see the
      module's docstring); the logger is pointed at that run's directory (the CLI's CSV logger,
      :class:`~src.utils.csv_logger.ResumableCSVLogger`, appends to its ``metrics.csv``). Checkpoints of other
      configurations are never resumed nor written to.
    - ``auto``: the same, but with no matching checkpoint the run starts fresh (``ckpt_path`` becomes ``None``)
      and says why: the mode a job script can always pass (SLURM requeues).
    - Under SLURM, Lightning's requeue checkpoint (:func:`slurm_requeue_checkpoint`) comes first: Lightning loads
      it itself when its config matches; a mismatch is refused.

    A checkpoint file is checked by :func:`check_resumed_config` when training starts (``src.train``), not here:
    ``src.evaluate`` and ``src.generate`` rebuild a resumed run from a ``config.yaml`` that names its checkpoint.

    Args:
        config: The parsed LightningCLI config (a jsonargparse ``Namespace``).
        current: This run's config as ``config.yaml`` holds it (a dict).
        ignore_seed: This run asked for a random seed, so a run with any seed matches.

    Returns:
        The checkpoint to resume (also written to ``config.ckpt_path``), or ``None`` (also for a file).

    Raises:
        FileNotFoundError: ``last`` with no ``last*.ckpt`` where the run would have written one.
        CheckpointMismatchError: ``last`` when no checkpoint there was saved with this configuration (listing
            the differences of the closest one).
    """
    mode = config.get("ckpt_path")
    if mode not in RESUME_MODES:
        return None
    requeued = slurm_requeue_checkpoint(config)
    if requeued is not None:  # a SLURM requeue: Lightning resumes its own checkpoint, if it is this run's
        saved = read_run_config(requeued)
        differences = config_differences(saved, current, ignore_seed)[0] if saved is not None else []
        if differences:
            raise CheckpointMismatchError(
                f"--ckpt_path {mode}: under SLURM Lightning resumes its requeue checkpoint {requeued}, which was "
                f"saved with other settings: {_listed(differences)}. Remove it, or run in another "
                "--trainer.default_root_dir."
            )
        rank_zero_info(
            f"--ckpt_path {mode}: resuming SLURM's requeue checkpoint {requeued} (Lightning loads it)."
        )
        config.ckpt_path = None  # Lightning takes hpc_ckpt_N.ckpt itself when ckpt_path is unset under SLURM
        return requeued
    found, searched, logger = _candidates(config)
    closest: tuple[Path, list[str]] | None = None
    for ckpt in found:
        saved = read_run_config(ckpt)
        if saved is None:
            continue
        differences, length = config_differences(saved, current, ignore_seed)
        if not differences:
            _log_into_run(logger, ckpt)
            config.ckpt_path = str(ckpt)
            changed = f" with a new run length or device count: {_listed(length)}" if length else ""
            rank_zero_info(f"--ckpt_path {mode}: resuming {ckpt}{changed}.")
            return ckpt
        if closest is None or len(differences) < len(closest[1]):
            closest = (ckpt, differences)
    if not found:
        reason = f"no checkpoint matches {searched}"
    else:
        reason = f"none of the {len(found)} checkpoints matching {searched} was saved with this configuration"
        if closest is not None:
            reason += f" (the closest, {closest[0]}, differs in {_listed(closest[1])})"
    if mode == "auto":
        rank_zero_info(f"--ckpt_path auto: {reason}; starting a new run.")
        config.ckpt_path = None
        return None
    if not found:
        raise FileNotFoundError(
            f"--ckpt_path last: {reason}. Start the run without --ckpt_path, or with --ckpt_path auto (a new run when "
            "there is nothing to resume), or pass a checkpoint file (--ckpt_path path/to/file.ckpt)."
        )
    raise CheckpointMismatchError(
        f"--ckpt_path last: {reason}. Only the run length (and the device count, when the global batch stays) may "
        "change on resuming: the restored optimizers, schedulers and counters would keep the old settings. Resume with the run's own settings (--config <its "
        "run directory>/config.yaml --ckpt_path last), or start a new run (without --ckpt_path, or with "
        "--ckpt_path auto)."
    )
