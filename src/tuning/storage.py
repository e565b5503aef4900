"""Open an Optuna storage from ``--storage``: a database URL, or a journal file for shared filesystems."""

from __future__ import annotations

import random
import time
from pathlib import Path

import optuna
from optuna.storages import RDBStorage, RetryFailedTrialCallback
from optuna.storages.journal import JournalFileBackend, JournalStorage
from sqlalchemy.exc import IntegrityError, OperationalError

JOURNAL_PREFIX = "journal:"
JOURNAL_SUFFIXES = (".log", ".journal", ".jsonl")
RUN_DIR = "run_dir"  # a trial's user attribute: its run directory (absolute)
CREATE_TRIES = 5
MAX_RETRY = 2  # a killed trial is run again (resuming its last.ckpt) at most this many times


def default_storage(study_dir: Path) -> str:
    """The default storage of a study: a SQLite file beside its directory (``runs/tune/<study>.db``)."""
    return f"sqlite:///{study_dir.resolve()}.db"


def is_journal(spec: str) -> bool:
    """Whether ``spec`` names a journal file (``journal:PATH`` or a path ending in .log/.journal/.jsonl)."""
    return spec.startswith(JOURNAL_PREFIX) or ("://" not in spec and spec.endswith(JOURNAL_SUFFIXES))


def open_storage(spec: str, heartbeat_s: int | None = None) -> optuna.storages.BaseStorage:
    """The storage ``spec`` names.

    Args:
        spec: A SQLAlchemy URL (``sqlite:///runs/tune/s.db``, ``postgresql://user@host/db``,
            ``mysql+pymysql://...``), or a journal file (``journal:/shared/s.log``, or a path ending in
            ``.log``), which works for workers on many machines over a shared filesystem (NFS).
        heartbeat_s: Database storages only: the interval of the worker's heartbeat. A trial whose worker went
            silent for four intervals (killed) is failed and its parameters run again by the next worker.

    Raises:
        ValueError: Naming ``--storage`` when the URL cannot be opened.
    """
    if is_journal(spec):
        path = Path(spec.removeprefix(JOURNAL_PREFIX))
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    engine_kwargs = {}
    if spec.startswith("sqlite:///"):
        Path(spec.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs = {"connect_args": {"timeout": 120}}  # workers and their trials write at once
    hb = {}
    if heartbeat_s:
        hb = {
            "heartbeat_interval": heartbeat_s,
            "grace_period": 4 * heartbeat_s,
            "failed_trial_callback": RetryFailedTrialCallback(
                max_retry=MAX_RETRY, inherit_intermediate_values=True
            ),
        }
    for attempt in range(CREATE_TRIES):
        try:
            return RDBStorage(spec, engine_kwargs=engine_kwargs, **hb)
        except (IntegrityError, OperationalError):
            # workers that start together race to create the schema (or lock SQLite): the next try finds it
            if attempt == CREATE_TRIES - 1:
                raise
            time.sleep(0.5 + random.random())
        except Exception as error:  # SQLAlchemy raises many types (ArgumentError, ImportError, ...)
            raise ValueError(
                f"--storage {spec!r} cannot be opened ({type(error).__name__}: {error}). Pass a SQLAlchemy URL "
                "(sqlite:///runs/tune/NAME.db, postgresql://user:pass@host/db) or a journal file (journal:PATH)."
            ) from error
    raise AssertionError("unreachable")
