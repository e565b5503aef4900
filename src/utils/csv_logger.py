"""A CSVLogger that appends to the run's ``metrics.csv`` when a run resumes, instead of deleting it."""

from __future__ import annotations

import csv

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from typing_extensions import override


class _AppendingExperimentWriter(ExperimentWriter):
    """Keeps an existing ``metrics.csv`` and its columns; new columns rewrite the header, as Lightning does."""

    @override
    def _check_log_dir_exists(self) -> None:
        if not self._fs.isfile(self.metrics_file_path):
            return
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            header = next(csv.reader(file), [])
        self.metrics_keys = sorted(header)


class ResumableCSVLogger(CSVLogger):
    """Lightning's ``CSVLogger``, except that a resumed run appends to ``metrics.csv``.

    A run resumed into its existing version directory (``--ckpt_path last``) keeps the earlier rows.

    Lightning's logger deletes the file when the directory exists. Rows logged after the resumed checkpoint
    and before the interruption stay in the file, so a step may appear twice; the later row is the resumed run's.
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
