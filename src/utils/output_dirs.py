"""The run's output folders.

They are rooted at ``--trainer.default_root_dir``, checked writable before training starts, claimed atomically (runs
started together never share a run directory), and a run that fails leaves no empty run directory behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_only

# What a run writes at its start; a run directory holding nothing else has no results.
START_FILES = frozenset({"config.yaml", "hparams.yaml"})


class OutputNotWritableError(OSError):
    """An output folder of the run cannot be written."""


class RunDirectoryTakenError(FileExistsError):
    """The logger's explicit ``version`` names a run directory that another run holds."""


def _loggers(logger: Any) -> list[Any]:
    loggers = logger if isinstance(logger, (list, tuple)) else [logger]
    return [lg for lg in loggers if lg is not None and not isinstance(lg, bool) and lg.get("init_args")]


def _is_local(path: Any) -> bool:
    return path is not None and "://" not in str(path)


def root_logger_dirs(config: Any) -> None:
    """Take relative logger ``save_dir``s inside ``--trainer.default_root_dir``, in place.

    Lightning's loggers ignore ``default_root_dir`` once their ``save_dir`` is set, as the default CSV logger's
    ``runs`` is; with this, ``--trainer.default_root_dir=X`` writes the run to ``X/runs/<name>/version_N``.
    """
    root = config.trainer.get("default_root_dir")
    if not root:
        return
    for logger in _loggers(config.trainer.get("logger")):
        save_dir = logger.init_args.get("save_dir")
        if _is_local(save_dir) and not os.path.isabs(str(save_dir)):
            logger.init_args.save_dir = str(Path(root) / str(save_dir))


def output_folders(config: Any) -> list[tuple[str, Path]]:
    """The options naming a folder the run writes to, with their values (local paths only)."""
    trainer = config.trainer
    folders: list[tuple[str, Any]] = []
    if "checkpoint" in config:
        folders.append(("--checkpoint.dirpath", config.get("checkpoint.dirpath")))
    best = config.get("best")
    if best is not None and best.get("init_args") is not None:
        folders.append(("--best.init_args.dirpath", best.init_args.get("dirpath")))
    loggers = _loggers(trainer.get("logger"))
    for i, logger in enumerate(loggers):
        key = "logger" if len(loggers) == 1 else f"logger[{i}]"
        folders.append((f"--trainer.{key}.init_args.save_dir", logger.init_args.get("save_dir")))
    if trainer.get("default_root_dir") or not loggers:  # checkpoints go there without a logger
        folders.append(("--trainer.default_root_dir", trainer.get("default_root_dir") or os.getcwd()))
    return [(option, Path(str(value))) for option, value in folders if value and _is_local(value)]


def unwritable_reason(folder: Path) -> str | None:
    """Why ``folder`` cannot be created or written (``None`` when it can), without creating anything.

    The nearest existing ancestor must be a folder in which a (nameless, temporary) file can be created.
    """
    existing = folder.absolute()
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        return f"{existing} is not writable ({error.strerror or error})"
    return None


def check_writable(config: Any) -> None:
    """Fail before training when an output folder cannot be written.

    Raises:
        OutputNotWritableError: Naming the option, its value and why.
    """
    for option, folder in output_folders(config):
        reason = unwritable_reason(folder)
        if reason is not None:
            raise OutputNotWritableError(
                f"{option}={folder}: the run cannot write there: {reason}. Choose a writable folder."
            )


def _is_empty_run(run_dir: Path) -> bool:
    files = [p for p in run_dir.rglob("*") if not p.is_dir()]
    return all(p.parent == run_dir and p.name in START_FILES for p in files)


def is_launching_rank_zero(trainer: pl.Trainer) -> bool:
    """Whether this process is global rank zero, also before the launcher has set the ranks on the trainer.

    ``rank_zero_only.rank`` comes from the environment (``RANK``, ``LOCAL_RANK``, ``SLURM_PROCID``); the
    process a user starts on another node (``NODE_RANK``/``GROUP_RANK`` > 0) is not rank zero either.
    """
    other_node = any(int(os.environ.get(name, "0") or 0) > 0 for name in ("NODE_RANK", "GROUP_RANK"))
    return trainer.is_global_zero and rank_zero_only.rank == 0 and not other_node


def run_directory(trainer: pl.Trainer) -> str:
    """The run's own folder: ``config.yaml``, ``samples/`` and (by default) ``checkpoints/`` go there.

    - CSV and TensorBoard: the logger's ``log_dir`` (``<save_dir>/<name>/version_N``), as ``trainer.log_dir``;
    - any other logger (W&B): ``<save_dir>/<name>/<version>``, the folder ``ModelCheckpoint`` puts its
      ``checkpoints/`` in (``<save_dir>/<project>/<run id>`` for W&B), where ``trainer.log_dir`` would be the
      ``save_dir`` that every run shares;
    - no logger: ``default_root_dir``.

    Rank zero's answer is broadcast, so under DDP every rank must call it.
    """
    logger = trainer.logger
    path: Any = trainer.default_root_dir
    if isinstance(logger, (CSVLogger, TensorBoardLogger)):
        path = logger.log_dir
    elif logger is not None and getattr(logger, "save_dir", None):
        if logger.version is None and trainer.is_global_zero:
            _ = logger.experiment  # W&B draws the run id when its run starts
        version = logger.version
        name = logger.name
        path = (
            os.path.join(logger.save_dir, str(name), str(version)) if version is not None else logger.save_dir
        )
    return trainer.strategy.broadcast(str(path))


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    folder = folder.absolute()
    while not folder.exists() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    return missing


def claim_run_dir(trainer: pl.Trainer, resuming: bool) -> list[Path]:
    """Create this run's ``version_N`` folder atomically, so that runs started together never share one.

    Lightning's CSV and TensorBoard loggers take the number after the highest ``version_N`` when they first
    write, so two runs started at the same moment in one ``save_dir`` (a job array, a sweep, two workers of a
    search) both take ``version_0``. Here rank zero creates the folder before training with ``mkdir``, which
    fails when the folder exists, trying the next number until one is free, and gives the logger that number.
    An explicit ``version`` (``--trainer.logger.init_args.version``) must be free unless the run resumes a
    checkpoint. Other loggers (W&B names its runs by a random id) and other ranks are left alone: Lightning
    broadcasts rank zero's run directory.

    Args:
        trainer: The run's trainer, before ``fit``.
        resuming: The run resumes a checkpoint (``--ckpt_path``), so its explicit version may exist.

    Returns:
        The folders created, the run directory first (for :func:`no_empty_run_dir`).

    Raises:
        RunDirectoryTakenError: The explicit version's folder exists and the run does not resume.
    """
    logger = trainer.logger
    if not (is_launching_rank_zero(trainer) and isinstance(logger, (CSVLogger, TensorBoardLogger))):
        return []
    root = Path(logger.root_dir)  # <save_dir>/<name>
    if not _is_local(root):
        return []
    created = _missing_folders(root)
    root.mkdir(parents=True, exist_ok=True)
    explicit = logger._version  # None unless the config sets it (the `version` property would compute one)
    if explicit is not None:
        run_dir = root / (explicit if isinstance(explicit, str) else f"version_{explicit}")
        try:
            run_dir.mkdir()
        except FileExistsError:
            if resuming:
                return created
            raise RunDirectoryTakenError(
                f"--trainer.logger.init_args.version={explicit}: {run_dir} exists, so another run holds it (or "
                "is writing there now); a second run would overwrite its config.yaml, samples and metrics. "
                "Leave the version unset (the next free version_N is taken), choose another one, or resume "
                "that run with --ckpt_path last."
            ) from None
        return [run_dir, *created]
    number = logger._get_next_version()
    while True:
        run_dir = root / f"version_{number}"
        try:
            run_dir.mkdir()
        except FileExistsError:  # another run took it between the listing and now
            number += 1
            continue
        logger._version = number
        return [run_dir, *created]


@contextlib.contextmanager
def no_empty_run_dir(trainer: pl.Trainer, claimed: list[Path] | None = None) -> Iterator[None]:
    """Remove the run directory this run creates when the block fails before any result is written.

    Only a new ``version_N`` of a CSV or TensorBoard logger is removed, on rank zero, when it holds nothing but
    ``config.yaml`` and ``hparams.yaml``; so are the folders above it that this run created and left empty.

    Args:
        trainer: The run's trainer.
        claimed: What :func:`claim_run_dir` created (the run directory first), when it ran before.
    """
    logger = trainer.logger
    created: list[Path] = list(claimed or [])
    if not created and is_launching_rank_zero(trainer) and isinstance(logger, (CSVLogger, TensorBoardLogger)):
        if logger.log_dir:
            created = _missing_folders(Path(logger.log_dir))
    try:
        yield
    except BaseException:
        if created and created[0].is_dir() and _is_empty_run(created[0]):
            shutil.rmtree(created[0], ignore_errors=True)
            for parent in created[1:]:
                with contextlib.suppress(OSError):
                    parent.rmdir()  # only when empty
        raise
