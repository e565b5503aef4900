"""The paper's language-model metrics: n-gram JS divergences of generated text, and the sample lines."""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_only
from torch import Tensor
from typing_extensions import override

from src.data.vocabulary import Vocabulary
from src.evaluation.schedule import ScheduledEvaluation
from src.metrics.ngram import js_divergence, ngram_counts
from src.utils.atomic_io import atomic_write_text
from src.utils.output_dirs import run_directory


class TextQuality(ScheduledEvaluation):
    """Logs ``{val,test}/js1`` to ``/js{max_n}`` and writes the decoded sample lines (``--quality``).

    At each evaluation it generates ``num_samples`` sequences from fixed noise, decodes each position by its
    argmax (as ``gan_language.py`` does) and measures, for ``n = 1..max_n``, the Jensen–Shannon divergence in
    bits between the n-gram distributions of the samples and of the held-out lines
    (:func:`~src.metrics.ngram.js_divergence`, as the released code's ``js_with``). It also logs
    ``js{n}_floor``: the same divergence between ``num_samples`` training lines and the held-out lines, the
    value a generator that reproduces the data would reach with this many samples.

    The lines go to ``<run dir>/samples/epoch=E-gen_step=S.txt`` (``test-...`` at test time), to a W&B table
    ``{val,test}/samples`` with a ``WandbLogger`` and to TensorBoard's text tab; only rank zero writes. Every
    rank computes the same values from the same noise, so it is safe under DDP. The datamodule must have a
    ``vocabulary`` and ``lines(split)`` (:class:`~src.data.TextDataModule`).

    Args:
        num_samples: Sequences generated per evaluation (640 in the released code: 10 batches of 64).
        every_n_epochs: Evaluate every this many epochs during fit (see
            :class:`~src.evaluation.schedule.ScheduledEvaluation`); with ``trainer.val_check_interval`` the
            evaluations follow the validations inside an epoch.
        max_n: Largest n-gram length (4 in the paper).
        batch_size: Sequences generated per forward pass.
        num_logged: Sample lines sent to the logger (the file gets all of them).
        seed: Seed of the noise and of the training lines behind the floor.
        dirpath: Folder of the sample files; defaults to ``<run dir>/samples``.
    """

    prog_bar_metric = "js4"

    def __init__(
        self,
        num_samples: int = 640,
        every_n_epochs: int = 1,
        max_n: int = 4,
        batch_size: int = 256,
        num_logged: int = 32,
        seed: int = 0,
        dirpath: str | None = None,
    ) -> None:
        super().__init__(every_n_epochs)
        for option, value in (("num_samples", num_samples), ("max_n", max_n), ("batch_size", batch_size)):
            if value < 1:
                raise ValueError(f"TextQuality {option} must be >= 1, got {option}={value}")
        self.num_samples, self.max_n, self.batch_size = num_samples, max_n, batch_size
        self.num_logged, self.seed, self.dirpath = num_logged, seed, dirpath
        self.last_path: Path | None = None
        self.last_lines: list[str] = []
        self._reference: list[Counter] | None = None
        self._floor: dict[str, float] | None = None

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        datamodule = trainer.datamodule
        if not (hasattr(datamodule, "vocabulary") and hasattr(datamodule, "lines")):
            raise ValueError(
                f"TextQuality needs a text datamodule (vocabulary and lines(split)), got "
                f"{type(datamodule).__name__}; use src.data.TextDataModule, or another --quality for other data"
            )
        self._log_dir = run_directory(trainer)  # a broadcast under DDP: read on every rank, not in the write
        self._reference = self._floor = None  # the data may differ from a previous fit

    # ------------------------------------------------------------------------------------------ measuring
    @torch.no_grad()
    def generate_indices(self, pl_module: pl.LightningModule) -> Tensor:
        """Sequences (num_samples, L) of vocabulary indices from the fixed noise: the argmax at each position."""
        noise = torch.randn(
            self.num_samples, pl_module.latent_dim, generator=torch.Generator().manual_seed(self.seed)
        )
        chunks = []
        for chunk in noise.split(self.batch_size):
            probs = pl_module.sample(noise=chunk.to(pl_module.device))  # (b, vocab, L)
            chunks.append(probs.argmax(dim=1).cpu())  # (b, L)
        return torch.cat(chunks)

    def _counts(self, rows: Tensor) -> list[Counter]:
        sequences = [tuple(r) for r in rows.tolist()]
        return [ngram_counts(sequences, n) for n in range(1, self.max_n + 1)]

    def _divergences(self, counts: list[Counter]) -> dict[str, float]:
        assert self._reference is not None
        return {f"js{n + 1}": js_divergence(c, r) for n, (c, r) in enumerate(zip(counts, self._reference))}

    def _prepare(self, datamodule: Any) -> None:
        """Count the held-out n-grams once, and the floor: ``num_samples`` training lines against them."""
        if self._reference is not None:
            return
        self._reference = self._counts(datamodule.lines("val"))
        train = datamodule.lines("train")
        pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(self.seed))
        floor = self._divergences(self._counts(train[pick[: self.num_samples]]))
        self._floor = {f"{key}_floor": value for key, value in floor.items()}

    @override
    def measure(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str = "val"
    ) -> dict[str, float]:
        """Generate, decode, measure the JS divergences and write the lines.

        Args:
            trainer: The trainer (its datamodule gives the vocabulary and the held-out lines).
            pl_module: A module with ``latent_dim`` and ``sample(noise=...)`` returning (n, vocab, L).
            stage: ``"val"`` or ``"test"``: the prefix of the sample file and of the logged table.

        Returns:
            ``js1``..``js{max_n}`` and ``js1_floor``..``js{max_n}_floor``.
        """
        start = time.perf_counter()
        datamodule = trainer.datamodule
        self._prepare(datamodule)
        indices = self.generate_indices(pl_module)  # (num_samples, L)
        values = self._divergences(self._counts(indices))
        assert self._floor is not None
        values.update(self._floor)
        vocabulary: Vocabulary = datamodule.vocabulary
        self.last_lines = vocabulary.decode_batch(indices)
        self.write(trainer, pl_module, self.last_lines, stage)
        self.last_duration_s = time.perf_counter() - start
        return values

    # ------------------------------------------------------------------------------------------- writing
    @rank_zero_only
    def write(self, trainer: pl.Trainer, pl_module: pl.LightningModule, lines: list[str], stage: str) -> Path:
        """Write the lines to the run directory and send the first ``num_logged`` to the loggers (rank zero)."""
        log_dir = getattr(self, "_log_dir", None) or trainer.default_root_dir
        folder = Path(self.dirpath or os.path.join(log_dir, "samples"))
        folder.mkdir(parents=True, exist_ok=True)
        step = int(getattr(pl_module, "generator_steps", trainer.global_step))
        prefix = "" if stage == "val" else f"{stage}-"
        path = folder / f"{prefix}epoch={trainer.current_epoch:04d}-gen_step={step:06d}.txt"
        atomic_write_text(path, "".join(line + "\n" for line in lines))
        self.last_path = path
        shown = lines[: self.num_logged]
        for logger in trainer.loggers:
            if hasattr(logger, "log_text"):  # WandbLogger: a table, one row per line
                logger.log_text(
                    key=f"{stage}/samples",
                    columns=["generator_step", "sample"],
                    data=[[step, line] for line in shown],
                    step=trainer.global_step,
                )
            elif hasattr(getattr(logger, "experiment", None), "add_text"):  # TensorBoard
                text = "\n".join(f"    {line}" for line in shown)  # indented: Markdown shows it verbatim
                logger.experiment.add_text(f"{stage}/samples", text, global_step=step)
        return path
