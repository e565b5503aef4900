"""Checks of option values before anything is built or written, with errors that name the option.

The CLI runs :func:`check_options` on the parsed config before it instantiates anything (so before a run folder
exists), :func:`check_batch_norm_batch_size` once the networks and the data are built, and
:func:`trainer_option_error` on the Trainer's own complaints. Each error names the option as a flag would
(``model.critic_optimizer.init_args.lr``, ``regularizer.weight``, ``trainer.devices``).
"""

from __future__ import annotations

import importlib
import inspect
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

# Options that may be infinite: the p of a gradient norm (``norm: .inf`` is the L∞ penalty).
INFINITY_ALLOWED = frozenset({"norm"})


class OptionError(ValueError):
    """An option holds a value it cannot take; the message names the option."""


def option_name(key: str) -> str:
    """The flag form of a config key: ``model.init_args.critic_optimizer.init_args.lr`` -> ``model.critic_optimizer.init_args.lr``."""
    parts = key.split(".")
    if len(parts) > 2 and parts[1] == "init_args":
        parts = [parts[0], *parts[2:]]
    return ".".join(parts)


def _plain(tree: Any) -> Any:
    """A jsonargparse ``Namespace`` (or anything else) as plain dicts and lists."""
    return tree.as_dict() if hasattr(tree, "as_dict") else tree


def _leaves(tree: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(tree, (list, tuple)):
        for index, value in enumerate(tree):
            yield from _leaves(value, f"{prefix}.{index}")
    else:
        yield prefix, tree


def check_finite(config: Any) -> None:
    """Reject NaN anywhere in the config, and infinities except in :data:`INFINITY_ALLOWED` options.

    A NaN passes every ``x < 0`` check (a NaN penalty weight would silently switch the penalty off), so it is
    caught here, once for every option.

    Raises:
        OptionError: Naming the first non-finite option.
    """
    for key, value in _leaves(_plain(config)):
        if not isinstance(value, float) or math.isfinite(value):
            continue
        parts = [p for p in key.split(".") if not p.isdigit()]
        if math.isinf(value) and parts and parts[-1] in INFINITY_ALLOWED:
            continue
        name = option_name(re.sub(r"\.\d+$", "", key))  # betas.0 -> betas
        raise OptionError(f"{name} must be a finite number, got {value} (YAML .nan/.inf)")


def check_devices(devices: Any) -> None:
    """``trainer.devices``: a count >= 1, ``-1`` or ``"auto"`` (all), or device ids (``[0, 1]``, ``"0,1"``).

    Raises:
        OptionError: Naming ``trainer.devices``.
    """
    text = str(devices).strip()
    if isinstance(devices, (list, tuple)):
        ids = [str(d) for d in devices]
    elif "," in text:
        ids = [d.strip() for d in text.split(",") if d.strip()]
    else:
        ids = None
    if ids is not None:
        valid = bool(ids) and all(d.isdigit() for d in ids)
    else:
        valid = text == "auto" or text == "-1" or (text.isdigit() and int(text) >= 1)
    if not valid:
        raise OptionError(
            f"trainer.devices must be a number of devices >= 1, -1 or 'auto' (all of them), or a list of device "
            f"ids such as [0, 1], got devices={devices!r}"
        )


def check_trainer(trainer: Any) -> None:
    """The Trainer options Lightning accepts but that fail or misbehave later in a GAN run.

    Raises:
        OptionError: Naming the option.
    """
    trainer = _plain(trainer)
    check_devices(trainer.get("devices", "auto"))
    rules = {
        "check_val_every_n_epoch": (lambda v: v >= 1, ">= 1 or null (validate by steps)"),
        "log_every_n_steps": (lambda v: v >= 0, ">= 0 (0: no logging)"),
        "gradient_clip_val": (lambda v: v >= 0, ">= 0 or null"),
        "val_check_interval": (lambda v: v > 0, "> 0 (a fraction of the epoch, or a number of batches)"),
    }
    for key, (valid, requirement) in rules.items():
        value = trainer.get(key)
        if (
            value is not None
            and not isinstance(value, bool)
            and isinstance(value, (int, float))
            and not valid(value)
        ):
            raise OptionError(f"trainer.{key} must be {requirement}, got {key}={value}")
    loggers = trainer.get("logger")
    for index, logger in enumerate(loggers if isinstance(loggers, list) else [loggers]):
        init_args = (logger.get("init_args") or {}) if isinstance(logger, dict) else {}
        flush = init_args.get("flush_logs_every_n_steps")
        if isinstance(flush, int) and flush < 1:  # CSVLogger divides by it
            where = f"trainer.logger.{index}" if isinstance(loggers, list) else "trainer.logger"
            raise OptionError(f"{where}.init_args.flush_logs_every_n_steps must be >= 1, got {flush}")
    accumulate = trainer.get("accumulate_grad_batches", 1)
    if accumulate != 1:
        raise OptionError(
            f"trainer.accumulate_grad_batches must be 1, got {accumulate}: the GAN modules optimize manually "
            "(one critic or generator update per batch), which Lightning cannot accumulate"
        )


def check_model_checkpoints(config: dict[str, Any], keys: tuple[str, ...] = ("checkpoint", "best")) -> None:
    """The ``ModelCheckpoint`` callbacks' counts (Lightning's own errors do not say which callback).

    Raises:
        OptionError: Naming the option.
    """
    for group in keys:
        options = config.get(group)
        if not isinstance(options, dict):
            continue
        options = options.get("init_args", options)
        for key, least in (("every_n_train_steps", 0), ("every_n_epochs", 0), ("save_top_k", -1)):
            value = options.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value < least:
                raise OptionError(f"{group}.{key} must be >= {least}, got {key}={value}")


def _import(class_path: str) -> Any:
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _dummy_build(cls: type, init_args: dict[str, Any], scheduler: bool) -> None:
    """Build an optimizer (or a scheduler on an SGD optimizer) over one-element parameters, to validate its args."""
    if scheduler:
        cls(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0), **init_args)
        return
    required = [
        p
        for p in list(inspect.signature(cls).parameters.values())
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        and p.name not in init_args
    ]
    cls(*[[nn.Parameter(torch.zeros(1))] for _ in required], **init_args)


def check_optimizers(model: Any) -> None:
    """Build every ``model.*_optimizer`` and ``model.*_scheduler`` once on a dummy parameter.

    Torch validates the arguments only when the optimizer is built, inside ``trainer.fit`` after the run folder
    exists; building them here fails first and names the argument (e.g. a negative learning rate).

    Raises:
        OptionError: Naming the argument (or the optimizer, when no single argument is to blame).
    """
    model = _plain(model) or {}
    for name, spec in (model.get("init_args") or {}).items():
        is_scheduler = name.endswith("_scheduler")
        if not (name.endswith("_optimizer") or is_scheduler) or not isinstance(spec, dict):
            continue
        if "class_path" not in spec:
            continue
        cls = _import(spec["class_path"])
        init_args = dict(spec.get("init_args") or {})
        try:
            _dummy_build(cls, init_args, is_scheduler)
        except (ValueError, TypeError) as error:
            culprit = f"model.{name}"
            for arg in init_args:  # the argument whose default makes it build
                try:
                    _dummy_build(cls, {k: v for k, v in init_args.items() if k != arg}, is_scheduler)
                except (ValueError, TypeError):
                    continue
                culprit = f"model.{name}.init_args.{arg}={init_args[arg]!r}"
                break
            raise OptionError(f"{culprit} is invalid for {spec['class_path']}: {error}") from error


def check_options(config: Any) -> None:
    """Every check that needs only the parsed config; run before anything is instantiated or written.

    Raises:
        OptionError: Naming the first invalid option.
    """
    plain = _plain(config)
    check_finite(plain)
    check_trainer(plain.get("trainer") or {})
    check_model_checkpoints(plain)
    check_optimizers(plain.get("model"))


def check_config_files(args: list[str]) -> None:
    """Read every config file named on the command line (``--config FILE``, ``--key=FILE.yaml``) with PyYAML.

    jsonargparse reports a YAML syntax error in ``"<unicode string>"``, and a binary ``--config`` file as a
    ``UnicodeDecodeError``; this names the option, the file and the line. A ``--config`` file must hold a
    mapping of options.

    Args:
        args: The command line, without the program name.

    Raises:
        OptionError: Naming the option, the file and what is wrong with it.
    """
    for index, token in enumerate(args):
        flag, equals, value = token.partition("=")
        if not equals:
            flag, value = (args[index - 1], token) if index > 0 else ("", token)
        path = Path(value)
        is_config = flag in ("--config", "-c")
        if not path.is_file() or not (is_config or path.suffix.lower() in (".yaml", ".yml")):
            continue
        where = f"{flag} {path}" if flag.startswith("-") else str(path)
        try:
            with path.open(encoding="utf-8") as stream:
                content = yaml.safe_load(stream)
        except UnicodeDecodeError as error:
            raise OptionError(
                f"{where}: not a YAML text file ({error.reason} at byte {error.start})"
            ) from error
        except yaml.YAMLError as error:
            raise OptionError(f"{where}: YAML syntax error: {' '.join(str(error).split())}") from error
        if is_config and content is not None and not isinstance(content, dict):
            raise OptionError(
                f"{where}: a config file holds a mapping of options (model:, data:, trainer: ...), "
                f"but this one holds a {type(content).__name__}"
            )


def check_batch_norm_batch_size(generator: nn.Module, batch_size: Any) -> None:
    """Refuse ``data.batch_size=1`` when the generator has ``BatchNorm1d``, which needs two samples per batch.

    Raises:
        OptionError: Naming ``data.batch_size`` and the layers.
    """
    if batch_size != 1:
        return
    layers = [name for name, module in generator.named_modules() if isinstance(module, nn.BatchNorm1d)]
    if layers:
        raise OptionError(
            f"data.batch_size=1, but the generator {type(generator).__name__} has BatchNorm1d ({', '.join(layers)}), "
            "which needs at least 2 samples per batch in training; use --data.batch_size=2 or more"
        )


def trainer_option_error(error: Exception, options: Any) -> OptionError:
    """Lightning's complaint about a Trainer argument, as an :class:`OptionError` naming ``trainer.<option>``.

    Args:
        error: What ``Trainer(...)`` raised.
        options: The Trainer's option names (the parsed ``trainer`` config).

    Returns:
        The error to raise.
    """
    text = str(error)
    named = [key for key in _plain(options) if re.search(rf"\b{re.escape(key)}\b", text)]
    where = f"trainer.{named[0]}" if named else "a trainer option"
    return OptionError(f"{where}: {text}")
