"""A search space file (``configs/tune/*.yaml``): CLI keys with their distributions, the objective, the pruner.

.. code-block:: yaml

    objective: {metric: val/w1, direction: minimize}   # prune_on: the metric fed to the pruner (default: val/...)
    # or a reduction of several logged metrics: {metric: "min(test/precision, test/recall)", direction: maximize}
    pruner: {class_path: optuna.pruners.MedianPruner, init_args: {n_startup_trials: 5}}   # optional
    params:
      model.critic_optimizer.init_args.lr:
        distribution: log_uniform          # log_uniform | uniform | int | categorical
        low: 1.0e-4
        high: 1.0e-2
        same_as: [model.generator_optimizer.init_args.lr]   # optional: other keys that take the same value
      model.n_critic: {distribution: int, low: 1, high: 5}
      model.generator.init_args.hidden_dim: {distribution: categorical, choices: [16, 32, 64]}
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml

from src.tuning.objective import metric_terms

DISTRIBUTIONS = ("log_uniform", "uniform", "int", "categorical")
DIRECTIONS = ("minimize", "maximize")


class SearchSpaceError(ValueError):
    """A search space file that cannot be searched; the message names the file, the entry and the fix."""


@dataclass(frozen=True)
class Param:
    """One searched CLI key.

    Attributes:
        key: The CLI key, as ``--key=value`` takes it (``model.n_critic``).
        distribution: One of :data:`DISTRIBUTIONS`.
        low: Lower bound (numeric distributions).
        high: Upper bound (numeric distributions).
        step: The step of an ``int`` distribution.
        choices: The values of a ``categorical`` distribution.
        same_as: Other CLI keys set to the same value.
    """

    key: str
    distribution: str
    low: float | None = None
    high: float | None = None
    step: int = 1
    choices: tuple[Any, ...] = ()
    same_as: tuple[str, ...] = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        """Draw this key's value for ``trial``."""
        if self.distribution == "categorical":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.distribution == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=self.step)
        return trial.suggest_float(
            self.key, float(self.low), float(self.high), log=self.distribution == "log_uniform"
        )

    def example(self) -> Any:
        """A value in the space, to check that the CLI accepts the key before any trial runs."""
        if self.distribution == "categorical":
            return self.choices[0]
        return int(self.low) if self.distribution == "int" else float(self.low)


@dataclass(frozen=True)
class SearchSpace:
    """A parsed search space file.

    Attributes:
        path: The file.
        params: The searched keys.
        metric: The logged metric the study optimises (the last value the run logs), or ``min``, ``max`` or
            ``mean`` of several (:mod:`src.tuning.objective`).
        direction: ``minimize`` or ``maximize``.
        prune_on: The metric reported to the pruner at every scheduled evaluation.
        pruner: ``{"class_path": ..., "init_args": {...}}`` of an ``optuna.pruners`` class, or ``None``.
    """

    path: Path
    params: tuple[Param, ...]
    metric: str
    direction: str
    prune_on: str
    pruner: dict[str, Any] | None = field(default=None)

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """The CLI keys of one trial and their values (``same_as`` keys included)."""
        values: dict[str, Any] = {}
        for param in self.params:
            value = param.suggest(trial)
            values[param.key] = value
            values.update(dict.fromkeys(param.same_as, value))
        return values

    def examples(self) -> dict[str, Any]:
        """One value per CLI key (``same_as`` included), to check the keys."""
        values: dict[str, Any] = {}
        for param in self.params:
            values.update(dict.fromkeys((param.key, *param.same_as), param.example()))
        return values

    def make_pruner(self) -> optuna.pruners.BasePruner:
        """The pruner: the file's, else ``MedianPruner(n_startup_trials=5)``; ``pruner: null`` never prunes."""
        return make_pruner(self.pruner)


def make_pruner(spec: dict[str, Any] | None) -> optuna.pruners.BasePruner:
    """An Optuna pruner from ``{"class_path": ..., "init_args": {...}}``; ``None``: one that never prunes.

    Optuna keeps no pruner in its storage, so each trial's run builds the study's pruner again from this.
    """
    if spec is None:
        return optuna.pruners.NopPruner()
    module, _, name = str(spec["class_path"]).rpartition(".")
    cls = getattr(importlib.import_module(module or "optuna.pruners"), name)
    return cls(**(spec.get("init_args") or {}))


def _error(path: Path, what: str) -> SearchSpaceError:
    return SearchSpaceError(f"{path}: {what}")


def _param(path: Path, key: str, spec: Any) -> Param:
    if not isinstance(spec, dict) or spec.get("distribution") not in DISTRIBUTIONS:
        got = spec.get("distribution") if isinstance(spec, dict) else spec
        raise _error(
            path, f"params.{key}.distribution must be one of {', '.join(DISTRIBUTIONS)}, got {got!r}"
        )
    dist = spec["distribution"]
    same_as = tuple(spec.get("same_as") or ())
    unknown = set(spec) - {"distribution", "low", "high", "step", "choices", "same_as"}
    if unknown:
        raise _error(path, f"params.{key} has unknown fields {sorted(unknown)}")
    if dist == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise _error(
                path, f"params.{key}: a categorical needs a non-empty list 'choices', got {choices!r}"
            )
        if any(c is not None and not isinstance(c, (bool, int, float, str)) for c in choices):
            raise _error(
                path,
                f"params.{key}.choices must be numbers, strings, booleans or null (Optuna stores only these), "
                f"got {choices!r}; for a class, search its class_path string",
            )
        return Param(key, dist, choices=tuple(choices), same_as=same_as)
    low, high = spec.get("low"), spec.get("high")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or low >= high:
        raise _error(path, f"params.{key}: {dist} needs numbers low < high, got low={low!r}, high={high!r}")
    if dist == "log_uniform" and low <= 0:
        raise _error(path, f"params.{key}: log_uniform needs low > 0, got low={low!r}")
    if dist == "int" and (int(low) != low or int(high) != high):
        raise _error(path, f"params.{key}: int needs integer bounds, got low={low!r}, high={high!r}")
    return Param(key, dist, float(low), float(high), int(spec.get("step", 1)), same_as=same_as)


def load_space(path: str | Path) -> SearchSpace:
    """Read and check a search space file (see the module docstring for its format).

    Raises:
        SearchSpaceError: A missing file, a distribution without its bounds, an objective without a metric.
    """
    path = Path(path)
    if not path.is_file():
        raise SearchSpaceError(f"--space {path}: no such file (the search spaces are configs/tune/*.yaml)")
    raw = yaml.safe_load(path.read_text()) or {}
    unknown = set(raw) - {"objective", "params", "pruner"}
    if unknown:
        raise _error(path, f"unknown top-level keys {sorted(unknown)} (allowed: objective, params, pruner)")
    params = raw.get("params")
    if not isinstance(params, dict) or not params:
        raise _error(path, "'params' must map CLI keys (such as model.n_critic) to their distributions")
    objective = raw.get("objective") or {}
    metric, direction = objective.get("metric"), objective.get("direction")
    if not isinstance(metric, str) or direction not in DIRECTIONS:
        raise _error(
            path,
            f"objective needs a logged metric and a direction ({' or '.join(DIRECTIONS)}), got {objective!r}, "
            "e.g. objective: {metric: val/fid, direction: minimize}",
        )
    try:
        reducer, names = metric_terms(metric)
    except ValueError as err:
        raise _error(path, f"objective.{err}") from None
    default_prune = ", ".join("val/" + name.split("/", 1)[-1] for name in names)
    prune_on = objective.get("prune_on") or (f"{reducer}({default_prune})" if reducer else default_prune)
    pruner = raw.get(
        "pruner", {"class_path": "optuna.pruners.MedianPruner", "init_args": {"n_startup_trials": 5}}
    )
    if pruner is not None and (not isinstance(pruner, dict) or "class_path" not in pruner):
        raise _error(path, f"pruner must be null or {{class_path: ..., init_args: {{...}}}}, got {pruner!r}")
    parsed = tuple(_param(path, str(key), spec) for key, spec in params.items())
    return SearchSpace(path, parsed, metric, direction, prune_on, pruner)


def cli_value(value: Any) -> str:
    """``value`` as a ``--key=value`` flag writes it (YAML: ``true``, ``null``, ``0.001``)."""
    if isinstance(value, bool) or value is None:
        return yaml.safe_dump(value).split("\n")[0]
    return repr(value) if isinstance(value, float) else str(value)
