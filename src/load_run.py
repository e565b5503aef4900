"""Rebuild a finished run from its checkpoint: the model, datamodule and trainer of the config it was trained with.

Every checkpoint the CLI writes holds its run's resolved config, and ``<run dir>/config.yaml`` sits next to
``<run dir>/checkpoints/``, so a checkpoint is enough to rebuild everything it was trained with (``src.evaluate``
and ``src.generate``). The checkpoint's own config comes first: a ``config.yaml`` beside it may belong to
another run that wrote into the same folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.utilities import rank_zero_warn

from src.utils.checkpoint import load_checkpoint
from src.utils.resume import RUN_CONFIG_KEY, config_differences

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
        load_checkpoint(ckpt)  # says what is there instead (nothing, or a folder and the checkpoints in it)
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


def _differences(config_file: Path, saved: str) -> list[str]:
    """The settings (not the run length) in which ``config_file`` differs from a checkpoint's saved config."""
    try:
        on_disk = yaml.safe_load(config_file.read_text())
    except (OSError, yaml.YAMLError) as error:
        return [f"{config_file} cannot be read ({error})"]
    lines = config_differences(yaml.safe_load(saved), on_disk if isinstance(on_disk, dict) else {})[0]
    return [
        line.replace(" in the run, ", " in the checkpoint, ").removesuffix(" now") + " in the file"
        for line in lines
    ]


def run_config(
    ckpt_path: str | Path, checkpoint: dict[str, Any], config: str | Path | None
) -> tuple[str, Path | None]:
    """The config to rebuild the run of ``ckpt_path`` from: a file, or the YAML text saved in the checkpoint.

    - ``config`` given: that file (with a warning listing what differs from the checkpoint's own config);
    - else the checkpoint's own config (every checkpoint of ``src.train`` holds one), unless the run's
      ``config.yaml`` says the same (then that file, which a user can read);
    - else (an older checkpoint) the run's ``config.yaml``.

    Returns:
        ``(--config value, the file or None when the checkpoint's own text is used)``.
    """
    saved = checkpoint.get(RUN_CONFIG_KEY)
    saved = saved if isinstance(saved, str) else None
    if config is not None:
        differences = _differences(Path(config), saved) if saved is not None else []
        if differences:
            rank_zero_warn(
                f"--config {config} differs from the config saved in {ckpt_path}: {'; '.join(differences[:8])}. "
                "The run is rebuilt from --config as asked; leave --config out to use the checkpoint's own."
            )
        return str(config), Path(config)
    if saved is None:
        found = find_run_config(ckpt_path)
        return str(found), found
    try:
        found: Path | None = find_run_config(ckpt_path)
    except FileNotFoundError:
        found = None
    if found is not None:
        differences = _differences(found, saved)
        if not differences:
            return str(found), found
        rank_zero_warn(
            f"{found} belongs to another run than {ckpt_path} (it differs in {'; '.join(differences[:8])}): "
            "another run wrote into the same folder. Using the config saved in the checkpoint."
        )
    return saved, None


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
        config: The run's config file; ``None``: the config saved in the checkpoint (:func:`run_config`).
        args: Further command-line style overrides, applied after the config.
        load_weights: Load the checkpoint's ``state_dict`` into ``cli.model`` (strict).
        **cli_kwargs: Passed to :func:`src.cli.build_cli`.

    Returns:
        The :class:`~src.cli.WGANCLI` with ``trainer``, ``model`` and ``datamodule``; ``cli.config_path`` is the
        config file used (``None`` when the checkpoint's own config was used).

    Raises:
        FileNotFoundError: ``ckpt_path`` is not a file, or it holds no config and no ``config.yaml`` was found.
        CheckpointLoadError: The checkpoint is truncated, corrupt or unsafe (loaded with ``weights_only=True``).
    """
    from src.cli import build_cli

    # weights_only=True (no pickled code runs), and before anything is built: a bad file fails fast
    checkpoint = load_checkpoint(ckpt_path, mmap=not load_weights)
    source, config_path = run_config(ckpt_path, checkpoint, config)
    # --ckpt_path=null: the checkpoint the run resumed from is not needed (it may be gone)
    cli = build_cli(
        ["--config", source, "--trainer.logger=false", "--ckpt_path=null", *(args or [])], **cli_kwargs
    )
    # The run's config.yaml is already written; without a logger it would be written into the working directory.
    cli.trainer.callbacks[:] = [cb for cb in cli.trainer.callbacks if not isinstance(cb, SaveConfigCallback)]
    cli.config_path = config_path
    if load_weights:
        cli.model.on_load_checkpoint(checkpoint)  # checks the shapes fit, restores the step counters
        cli.model.load_state_dict(checkpoint["state_dict"])
    return cli
