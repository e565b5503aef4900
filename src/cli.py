"""The LightningCLI of the template: defaults, argument links, strategy choice and the run directory."""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from src.callbacks import PreemptionCheckpoint, SampleGrid
from src.callbacks.save_config import SaveAndLogConfig
from src.data.global_batch import per_device_batch_size
from src.defaults import DEFAULT_RUN, TRAINER_DEFAULTS
from src.evaluation import ScheduledEvaluation
from src.models import WGANGP
from src.regularizers import CriticRegularizer
from src.utils.atomic_io import AtomicCheckpointIO
from src.utils.checkpoint import load_checkpoint
from src.utils.options import (
    check_batch_norm_batch_size,
    check_config_files,
    check_options,
    trainer_option_error,
)
from src.utils.output_dirs import check_writable, root_logger_dirs
from src.utils.resume import (
    RESUME_MODES,
    check_resumed_config,
    resolve_resume,
    use_resumable_csv_logger,
)

# Lightning 2.6 still calls a torch pytree API that newer torch deprecates; a newcomer can do nothing about it.
warnings.filterwarnings(
    "ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning
)

# Lightning 2.6 advertises its cloud logger (litlogger) at the start of every run; the template's loggers are
# CSV, TensorBoard and W&B.
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
    lambda record: "litlogger" not in record.getMessage()
)

DDP_STRATEGY = "ddp_find_unused_parameters_true"
SOURCE_ROOT = Path(__file__).resolve().parent  # src/


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


def _raised_in_template(error: BaseException) -> bool:
    trace = error.__traceback__
    while trace is not None and trace.tb_next is not None:
        trace = trace.tb_next
    return trace is not None and Path(trace.tb_frame.f_code.co_filename).is_relative_to(SOURCE_ROOT)


def template_error(error: BaseException) -> BaseException | None:
    """The error the template's own code raised behind ``error`` (its innermost cause raised under ``src/``)."""
    if _raised_in_template(error):
        return error
    found, seen = None, set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if _raised_in_template(cause):
            found = cause
        cause = cause.__cause__ or cause.__context__
    return found


class WGANCLI(LightningCLI):
    """LightningCLI with the template's defaults and links.

    - ``data.data_shape`` is linked into the generator's and critic's ``data_shape``;
    - ``--regularizer`` (default :class:`~src.regularizers.GradientPenalty`), ``--checkpoint`` and ``--samples``
      are callbacks that are always present and configurable by flag;
    - ``--quality`` (default: :class:`~src.evaluation.ImageQuality` on the digits classifier, any
      :class:`~src.evaluation.ScheduledEvaluation` by ``class_path``) and ``--best`` (the best-FID
      ``ModelCheckpoint``) are callbacks with their own keys too, so a config changes them key by key and
      ``--quality=null`` / ``--best=null`` drops them; ``trainer.callbacks`` is left for extra callbacks;
    - with more than one device (or node) and ``--trainer.strategy=auto``, DDP with
      ``find_unused_parameters=True`` is chosen, because the generator's parameters take no part in critic
      steps (and vice versa);
    - ``--ckpt_path last`` resumes the newest ``last.ckpt`` saved with this configuration (the run length may
      differ), logging into that run's directory; ``--ckpt_path auto`` does the same or starts a new run; any
      other difference from the checkpoint's saved config is refused (:mod:`src.utils.resume`);
      ``--test_finished`` tests a resumed run that is already complete (``src.train`` trains nothing then);
      ``--preemption`` saves ``last.ckpt`` on SIGTERM/SIGUSR1 and Ctrl-C; run files are written atomically;
    - a ``data.global_batch_size`` that does not split across the devices fails before any process starts;
      an error raised by the template's own code while jsonargparse builds a class is shown as it is;
    - relative logger ``save_dir``s are taken inside ``--trainer.default_root_dir``; a training run checks that
      every output folder is writable before it starts (:meth:`check_before_training`);
    - the resolved config is logged to every logger (the W&B run config).
    """

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """Add the template's callbacks, links and defaults."""
        parser.add_lightning_class_args(CriticRegularizer, "regularizer", subclass_mode=True, required=False)
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(SampleGrid, "samples")
        parser.add_lightning_class_args(ScheduledEvaluation, "quality", subclass_mode=True, required=False)
        parser.add_lightning_class_args(ModelCheckpoint, "best", subclass_mode=True, required=False)
        parser.add_lightning_class_args(PreemptionCheckpoint, "preemption")
        parser.add_argument(
            "--ckpt_path",
            type=str | None,
            default=None,
            help="Checkpoint to resume from: a file; 'last' for the newest last.ckpt saved with this "
            "configuration (the resumed run logs into that run's directory); 'auto': the same, or a new run when "
            "there is none. Only the run length (max_generator_steps, max_epochs, ...) may differ from the "
            "checkpoint's config; other differences are refused.",
        )
        parser.add_argument(
            "--test_finished",
            type=bool,
            default=False,
            help="When --ckpt_path resumes a run that has already reached its length (nothing to train), test its "
            "checkpoint and its best checkpoint as the end of a run does; by default it only says it is finished.",
        )
        for net in ("generator", "critic"):
            parser.link_arguments(
                "data.data_shape", f"model.init_args.{net}.init_args.data_shape", apply_on="instantiate"
            )
        parser.set_defaults(DEFAULT_RUN)

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse, and remember whether the seed is random (``seed_everything: true``) before it is drawn.

        A YAML file with a syntax error fails naming the file (jsonargparse's message does not).
        """
        argv = sys.argv[1:] if args is None else args
        try:
            check_config_files([str(a) for a in argv] if isinstance(argv, (list, tuple)) else [])
        except ValueError as error:
            parser.error(str(error))
        super().parse_arguments(parser, args)
        config = self.config[self.config.subcommand] if self.config.get("subcommand") else self.config
        self.random_seed = config.get("seed_everything") is True

    def before_instantiate_classes(self) -> None:
        """Prepare the config before anything is built.

        Root the logger in ``default_root_dir``; choose DDP for several devices; resolve ``--ckpt_path last`` or
        ``auto`` to the checkpoint of a run configured as this one (it sets the logger's version).
        """
        config = self.config[self.subcommand] if self.subcommand else self.config
        check_options(config)  # bad values fail here, naming the option, before any folder is made
        root_logger_dirs(config)
        use_resumable_csv_logger(config)  # keeps metrics.csv on resuming; writes hparams.yaml atomically
        trainer = config.trainer
        world_size = count_devices(trainer.devices, trainer.accelerator) * int(trainer.num_nodes)
        if str(trainer.strategy) == "auto" and world_size > 1:
            trainer.strategy = DDP_STRATEGY
        global_batch = config.get("data.init_args.global_batch_size")
        if global_batch is not None:  # before the launcher spawns a process per device
            per_device_batch_size(1, global_batch, world_size)
        if config.get("ckpt_path") in RESUME_MODES:
            self.resumed = resolve_resume(
                config, self.saved_form(config), getattr(self, "random_seed", False)
            )
        ckpt_path = config.get("ckpt_path")
        if ckpt_path and "://" not in str(ckpt_path):
            load_checkpoint(ckpt_path, mmap=True)  # a truncated or unsafe file fails now, naming it

    def saved_form(self, config: Any) -> dict[str, Any]:
        """``config`` as ``config.yaml`` and every checkpoint's run config hold it."""
        return yaml.safe_load(self._parser(self.subcommand).dump(config, skip_none=False))

    def check_before_training(self) -> None:
        """What only a training run checks, before it writes anything.

        The output folders must be writable; a ``--ckpt_path`` file must have been saved with these settings
        (the run length may differ). ``src.evaluate`` and ``src.generate`` rebuild runs without these checks.

        Raises:
            OutputNotWritableError: An output folder cannot be written.
            CheckpointMismatchError: The checkpoint's run had other settings (each one listed).
        """
        config = self.config[self.subcommand] if self.subcommand else self.config
        check_writable(config)
        ckpt = config.get("ckpt_path")
        if ckpt and ckpt != str(getattr(self, "resumed", None)) and Path(ckpt).is_file():
            check_resumed_config(Path(ckpt), self.saved_form(config), getattr(self, "random_seed", False))

    def instantiate_classes(self) -> None:
        """Build the classes; an error raised by the template's own code is shown as it is.

        jsonargparse wraps an error raised while it builds a ``data`` or ``model`` class (a missing
        ``--data.path``, a folder without text files) in a "Does not validate against any of the Union subtypes"
        error some 70 lines long; the template's own message comes out instead.
        """
        try:
            super().instantiate_classes()
        except Exception as error:
            own = template_error(error)
            if own is None or own is error:
                raise
            raise own.with_traceback(own.__traceback__) from None

    def instantiate_trainer(self, **kwargs: Any) -> pl.Trainer:
        """Build the Trainer; Lightning's complaint about an argument names the ``trainer.*`` option."""
        try:
            return super().instantiate_trainer(**kwargs)
        except (MisconfigurationException, ValueError, TypeError) as error:
            config = self.config[self.subcommand] if self.subcommand else self.config
            raise trainer_option_error(error, config.trainer) from error

    def after_instantiate_classes(self) -> None:
        """Drop null callbacks (``--regularizer``, ``--quality``, ``--best``); record the networks' configs in the model's hyperparameters; atomic saves.

        With the networks' ``class_path``/``init_args`` (linked ``data_shape`` included) in the checkpoint,
        ``WGANGP.load_from_checkpoint(path)`` rebuilds the whole model, as ``python -m src.generate`` does.
        """
        self.trainer.callbacks[:] = [cb for cb in self.trainer.callbacks if cb is not None]
        if isinstance(getattr(self.model, "generator", None), torch.nn.Module):
            check_batch_norm_batch_size(self.model.generator, getattr(self.datamodule, "batch_size", None))
        # Atomic checkpoint writes: a kill cannot truncate a checkpoint.
        if type(self.trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            self.trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        model_config = (getattr(self, "config_dump", None) or {}).get("model", {}).get("init_args", {})
        for net in ("generator", "critic"):
            if isinstance(model_config.get(net), dict) and "class_path" in model_config[net]:
                self.model.hparams[net] = model_config[net]


def build_cli(args: list[str] | None = None, cli_class: type[WGANCLI] = WGANCLI, **kwargs: Any) -> WGANCLI:
    """Parse ``args`` (default: ``sys.argv``) and instantiate the trainer, model and datamodule (``cli_class``)."""
    return cli_class(
        WGANGP,
        pl.LightningDataModule,
        subclass_mode_model=True,  # e.g. model.class_path: src.models.CompetitiveWGAN
        subclass_mode_data=True,
        run=False,
        auto_configure_optimizers=False,
        trainer_defaults=TRAINER_DEFAULTS,
        seed_everything_default=0,  # Lightning's `true` also seeds 0, with a "No seed found" warning
        save_config_callback=SaveAndLogConfig,
        save_config_kwargs={"overwrite": True},
        args=args,
        **kwargs,
    )
