"""Rebuild a finished run from its checkpoint: the model, datamodule and trainer of its ``config.yaml``.

LightningCLI's ``SaveConfigCallback`` writes ``<run dir>/config.yaml`` next to ``<run dir>/checkpoints/``, so a
checkpoint is enough to rebuild everything it was trained with (``src.evaluate`` and ``src.generate``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.cli import SaveConfigCallback

from src.utils.checkpoint import load_checkpoint

CONFIG_NAME = "config.yaml"


def find_run_config(ckpt_path: str | Path, max_levels: int = 3) -> Path:
    """The ``config.yaml`` of the run a checkpoint belongs to.

    Looks in the checkpoint's folder and up to ``max_levels`` folders above it (``<run>/checkpoints/x.ckpt``
    finds ``<run>/config.yaml``).

    Raises:
        FileNotFoundError: When there is none; the message says to pass ``--config``.
    """
    ckpt = Path(ckpt_path)
    if not ckpt.is_file():
        raise FileNotFoundError(f"--ckpt {str(ckpt)!r} is not a file")
    folder = ckpt.resolve().parent
    for _ in range(max_levels + 1):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
        folder = folder.parent
    raise FileNotFoundError(
        f"No {CONFIG_NAME} found next to or above {ckpt} (LightningCLI writes it into the run directory); "
        "pass the run's configuration with --config FILE"
    )


def load_run(
    ckpt_path: str | Path,
    config: str | Path | None = None,
    args: list[str] | None = None,
    load_weights: bool = True,
    **cli_kwargs: Any,
) -> Any:
    """Build the CLI objects of the run that wrote ``ckpt_path``, without writing anything into that run.

    The trainer gets no logger and no ``SaveConfigCallback``, so nothing is written into the run's folder;
    ``args`` may override any option as on the command line (``--trainer.devices=1``, ``--data.batch_size=..``).

    Args:
        ckpt_path: A Lightning checkpoint written by ``src.train``.
        config: The run's config file; ``None`` finds ``config.yaml`` in the run directory.
        args: Further command-line style overrides, applied after the config.
        load_weights: Load the checkpoint's ``state_dict`` into ``cli.model`` (strict).
        **cli_kwargs: Passed to :func:`src.cli.build_cli`.

    Returns:
        The :class:`~src.cli.WGANCLI` with ``trainer``, ``model`` and ``datamodule``; ``cli.config_path`` is the
        config file used.

    Raises:
        FileNotFoundError: ``ckpt_path`` is not a file, or no ``config.yaml`` was found.
        CheckpointLoadError: The checkpoint is truncated, corrupt or unsafe (loaded with ``weights_only=True``).
    """
    from src.cli import build_cli

    config_path = Path(config) if config is not None else find_run_config(ckpt_path)
    # weights_only=True (no pickled code runs), and before anything is built: a bad file fails fast
    checkpoint = load_checkpoint(ckpt_path) if load_weights else None
    cli = build_cli(["--config", str(config_path), "--trainer.logger=false", *(args or [])], **cli_kwargs)
    # The run's config.yaml is already written; without a logger it would be written into the working directory.
    cli.trainer.callbacks[:] = [cb for cb in cli.trainer.callbacks if not isinstance(cb, SaveConfigCallback)]
    cli.config_path = config_path
    if checkpoint is not None:
        cli.model.on_load_checkpoint(checkpoint)  # checks the shapes fit, restores the step counters
        cli.model.load_state_dict(checkpoint["state_dict"])
    return cli
