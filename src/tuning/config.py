"""The train command's config without training: which keys it accepts, and the config a run would save."""

from __future__ import annotations

import sys
from typing import Any
from unittest import mock

import yaml

from src.cli import WGANCLI, build_cli
from src.tuning.space import SearchSpace, SearchSpaceError, cli_value


class _ParseOnlyCLI(WGANCLI):
    """The train command's CLI up to its resolved config: parses and checks, builds nothing."""

    def instantiate_classes(self) -> None:
        """Build nothing."""

    def after_instantiate_classes(self) -> None:
        """Nothing was built."""


def flags(values: dict[str, Any]) -> list[str]:
    """``--key=value`` flags for ``python -m src.train``."""
    return [f"--{key}={cli_value(value)}" for key, value in values.items()]


def resolved_config(args: list[str]) -> dict[str, Any]:
    """The config ``python -m src.train ARGS`` would save as ``config.yaml`` (nothing is built or written).

    Raises:
        ValueError: The train command refuses ``args`` (its message).
    """
    try:
        with mock.patch.object(sys, "argv", sys.argv[:1]):  # the arguments are `args`, not this process's
            cli = build_cli(args, cli_class=_ParseOnlyCLI, parser_kwargs={"exit_on_error": False})
    except SystemExit as error:  # jsonargparse printed the reason
        raise ValueError(
            f"python -m src.train refuses these arguments (exit {error.code}): see above"
        ) from error
    except Exception as error:  # jsonargparse's ArgumentError, the template's OptionError, ...
        raise ValueError(str(error)) from error
    config = cli.saved_form(cli.config)
    config.pop("config", None)
    return config


def check_keys(space: SearchSpace, base_args: list[str]) -> None:
    """Check that the train command accepts every key of ``space`` on top of ``base_args``, before any trial.

    Raises:
        SearchSpaceError: Naming each key the CLI does not know (or refuses a value of) and the fix.
    """
    try:
        resolved_config([*base_args, *flags(space.examples())])
        return
    except ValueError:
        pass
    try:
        resolved_config(base_args)
    except ValueError as error:
        raise SearchSpaceError(f"The base run (without the search space) is refused: {error}") from error
    bad = []
    for key, value in space.examples().items():
        try:
            resolved_config([*base_args, *flags({key: value})])
        except ValueError as error:
            bad.append(f"{key} (--{key}={cli_value(value)}: {str(error).splitlines()[0][:300]})")
    raise SearchSpaceError(
        f"{space.path}: python -m src.train does not accept {'; '.join(bad) or 'these keys together'}. Every key "
        "of 'params' must be a flag of the train command on top of the base config: list them with "
        "`python -m src.train --config <base> --print_config` (e.g. model.init_args.n_critic, "
        "model.critic_optimizer.init_args.lr)."
    )


def dump(config: dict[str, Any]) -> str:
    """``config`` as YAML, keys in their order."""
    return yaml.safe_dump(config, sort_keys=False)
