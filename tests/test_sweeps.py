"""configs/sweeps/*.yaml: W&B sweeps whose every parameter is a CLI key of ``python -m src.train``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from src.tuning.config import resolved_config
from tests.helpers import REPO_ROOT

SWEEPS = sorted((REPO_ROOT / "configs" / "sweeps").glob("*.yaml"))


def _example(spec: dict[str, Any]) -> Any:
    """A value the sweep can draw for ``spec`` (W&B's sweep format), other than the train command's default."""
    if "values" in spec:
        return spec["values"][-1]
    if "value" in spec:
        return spec["value"]
    low, high = spec["min"], spec["max"]
    return int(high) if spec.get("distribution", "").startswith(("int", "q_")) else (low * high) ** 0.5


def _lookup(config: dict[str, Any], key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_every_sweep_parameter_is_a_train_cli_key(path: Path) -> None:
    sweep = yaml.safe_load(path.read_text())
    command = sweep["command"]
    assert command[:4] == ["${env}", "python", "-m", "src.train"] and command[-1] == "${args}"
    assert sweep["metric"]["goal"] in ("minimize", "maximize") and sweep["method"] in (
        "bayes",
        "random",
        "grid",
    )
    fixed = [str(a) for a in command[4:-1]]  # the config files every run gets
    for i, arg in enumerate(fixed):
        if arg == "--config":
            assert (REPO_ROOT / fixed[i + 1]).is_file(), fixed[i + 1]
    values = {key: _example(spec) for key, spec in sweep["parameters"].items()}
    # W&B's ${args} passes each parameter as --key=value
    config = resolved_config([*fixed, *(f"--{key}={value}" for key, value in values.items())])
    for key, value in values.items():
        assert _lookup(config, key) == pytest.approx(value), key  # each value lands on its key
    assert sweep["metric"]["name"].startswith("val/")  # a metric the runs log during training
