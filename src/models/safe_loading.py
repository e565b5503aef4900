"""``load_from_checkpoint`` that runs no pickled code by default and names a file it cannot read."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import IO, Any

from src.utils.checkpoint import load_checkpoint


class SafeLoadingMixin:
    """Makes ``load_from_checkpoint`` default to ``weights_only=True``, whatever the environment says.

    Lightning passes an omitted ``weights_only`` on to ``torch.load`` as ``None``, which
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` turns into an unrestricted unpickling that can run code; an explicit
    ``True`` is always honoured. Mixed into a ``LightningModule`` before it (``class M(SafeLoadingMixin,
    LightningModule)``).
    """

    @classmethod
    def load_from_checkpoint(
        cls,
        checkpoint_path: str | Path | IO,
        map_location: Any = None,
        hparams_file: str | Path | None = None,
        strict: bool | None = None,
        weights_only: bool | None = True,
        **kwargs: Any,
    ) -> Any:
        """Lightning's ``load_from_checkpoint`` with ``weights_only=True`` by default.

        Args:
            checkpoint_path: The checkpoint file (or a file-like object).
            map_location: As for :func:`torch.load`.
            hparams_file: An optional YAML file of hyperparameters, as in Lightning.
            strict: Whether the state dict must match the model exactly (Lightning's default when ``None``).
            weights_only: Restrict unpickling to tensors and plain types; pass ``False`` only for a trusted file.
            **kwargs: Arguments that override the saved hyperparameters (e.g. ``generator=...``).

        Returns:
            The model, in the state of the checkpoint.

        Raises:
            CheckpointLoadError: The file is truncated, corrupt or holds objects other than tensors and plain
                types; the message names it.
        """
        try:
            return super().load_from_checkpoint(  # type: ignore[misc]
                checkpoint_path,
                map_location=map_location,
                hparams_file=hparams_file,
                strict=strict,
                weights_only=weights_only,
                **kwargs,
            )
        except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, TypeError, ValueError, OSError):
            local_file = isinstance(checkpoint_path, (str, Path)) and "://" not in str(checkpoint_path)
            if weights_only and local_file:
                load_checkpoint(checkpoint_path, mmap=True)  # a file it cannot read: the error names it
            raise
