"""The LightningCLI of the template: defaults, argument links, strategy choice and the run directory."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from src.callbacks import CriticRegularizer, SampleGrid
from src.models import WGANGP

DDP_STRATEGY = "ddp_find_unused_parameters_true"

PAPER_ADAM = {"class_path": "torch.optim.Adam", "init_args": {"lr": 1e-4, "betas": [0.0, 0.9]}}

TRAINER_DEFAULTS: dict[str, Any] = {
    "logger": {
        "class_path": "lightning.pytorch.loggers.CSVLogger",
        "init_args": {"save_dir": "runs", "name": "digits"},
    },
    "log_every_n_steps": 25,
    "max_epochs": 1000,
}


def count_devices(devices: Any, accelerator: Any) -> int:
    """How many devices a ``--trainer.devices`` value asks for (``"auto"``/-1: all visible GPUs, else 1)."""
    if isinstance(devices, (list, tuple)):
        return len(devices)
    text = str(devices).strip()
    if "," in text:
        return len([d for d in text.split(",") if d.strip()])
    if text in ("auto", "-1"):
        uses_gpu = str(accelerator) in ("auto", "gpu", "cuda")
        return torch.cuda.device_count() if uses_gpu and torch.cuda.is_available() else 1
    try:
        return int(text)
    except ValueError:
        return 1


class WGANCLI(LightningCLI):
    """LightningCLI with the template's defaults and links.

    - ``data.data_shape`` is linked into the generator's and critic's ``data_shape``;
    - ``--regularizer`` (default :class:`~src.callbacks.GradientPenalty`), ``--checkpoint`` and ``--samples``
      are callbacks that are always present and configurable by flag;
    - with more than one device (or node) and ``--trainer.strategy=auto``, DDP with
      ``find_unused_parameters=True`` is chosen, because the generator's parameters take no part in critic
      steps (and vice versa).
    """

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """Add the template's callbacks, links and defaults."""
        parser.add_lightning_class_args(CriticRegularizer, "regularizer", subclass_mode=True, required=False)
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(SampleGrid, "samples")
        parser.add_argument("--ckpt_path", type=str | None, default=None, help="Checkpoint to resume from.")
        for net in ("generator", "critic"):
            parser.link_arguments(
                "data.data_shape", f"model.{net}.init_args.data_shape", apply_on="instantiate"
            )
        parser.set_defaults(
            {
                "model.generator": {"class_path": "src.nets.DCGANGenerator", "init_args": {"dim": 32}},
                "model.critic": {"class_path": "src.nets.DCGANCritic", "init_args": {"dim": 32}},
                "model.generator_optimizer": PAPER_ADAM,
                "model.critic_optimizer": PAPER_ADAM,
                "data": {"class_path": "src.data.DigitsDataModule"},
                "regularizer": {"class_path": "src.callbacks.GradientPenalty"},
                "checkpoint.save_last": True,
            }
        )

    def before_instantiate_classes(self) -> None:
        """Choose DDP with unused-parameter detection when several devices or nodes are requested."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        trainer = config.trainer
        if str(trainer.strategy) != "auto":
            return
        if count_devices(trainer.devices, trainer.accelerator) > 1 or int(trainer.num_nodes) > 1:
            trainer.strategy = DDP_STRATEGY


def build_cli(args: list[str] | None = None, **kwargs: Any) -> WGANCLI:
    """Parse ``args`` (default: ``sys.argv``) and instantiate the trainer, model and datamodule."""
    return WGANCLI(
        WGANGP,
        pl.LightningDataModule,
        subclass_mode_data=True,
        run=False,
        auto_configure_optimizers=False,
        trainer_defaults=TRAINER_DEFAULTS,
        save_config_kwargs={"overwrite": True},
        args=args,
        **kwargs,
    )
