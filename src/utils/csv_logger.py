"""The CSV logger of every CLI run: appends to ``metrics.csv`` when a run resumes, and writes its files atomically."""

from __future__ import annotations

import csv
import os

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.core.saving import save_hparams_to_yaml
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from typing_extensions import override

from src.utils.atomic_io import atomic_path


class _AppendingExperimentWriter(ExperimentWriter):
    """Keeps an existing ``metrics.csv`` and its columns; ``hparams.yaml`` and header rewrites are atomic.

    New columns rewrite the whole file with the new header, as Lightning does, but through a temporary file, so a
    full disk or a kill leaves the previous file instead of a truncated one.
    """

    @override
    def _check_log_dir_exists(self) -> None:
        if not self._fs.isfile(self.metrics_file_path):
            return
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            header = next(csv.reader(file), [])
        self.metrics_keys = sorted(header)

    def _local(self) -> bool:
        return "://" not in str(self.log_dir)

    @override
    def log_hparams(self, params: dict) -> None:
        if not self._local():
            super().log_hparams(params)
            return
        self.hparams.update(params)
        with atomic_path(os.path.join(self.log_dir, self.NAME_HPARAMS_FILE)) as temporary:
            save_hparams_to_yaml(temporary, self.hparams)

    @override
    def _rewrite_with_new_header(self, fieldnames: list[str]) -> None:
        if not self._local():
            super()._rewrite_with_new_header(fieldnames)
            return
        with open(self.metrics_file_path, newline="") as file:
            rows = list(csv.DictReader(file))
        with atomic_path(self.metrics_file_path) as temporary, temporary.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=fieldnames)
            writer.writeheader()
            writer.writerows(rows)


class ResumableCSVLogger(CSVLogger):
    """Lightning's ``CSVLogger``, except that a resumed run appends to ``metrics.csv`` and files are written atomically.

    The CLI uses it for every CSV run (:func:`src.utils.resume.use_resumable_csv_logger`). A run resumed into its
    existing version directory (``--ckpt_path last``, or a checkpoint file and its ``version``) keeps the earlier
    rows; Lightning's logger deletes the file when the directory exists. Rows logged after the resumed checkpoint
    and before the interruption stay in the file, so a step may appear twice; the later row is the resumed run's.
    ``hparams.yaml`` and the rewrites of ``metrics.csv`` for a new column go through a temporary file and a rename.
    Takes the same arguments as ``CSVLogger``.
    """

    @property
    @override
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        """The writer, created on first use in ``log_dir``."""
        if self._experiment is not None:
            return self._experiment
        self._fs.makedirs(self.root_dir, exist_ok=True)
        self._experiment = _AppendingExperimentWriter(log_dir=self.log_dir)
        return self._experiment
