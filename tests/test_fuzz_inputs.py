"""Fuzzing the inputs: every numeric option of the default and the toy config with 0, -1, NaN and inf, bad
config files and bad checkpoints.

Each bad input must fail before anything is trained or written, with a message that names the option (or the
file). The options are set in the parsed config of one CLI per config and run through the CLI's own steps
(``before_instantiate_classes``, ``instantiate_classes``, ``after_instantiate_classes``), which is what
``python -m src.train`` does after parsing; a few subprocess runs check the command-line exit path.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from src.cli import WGANCLI, build_cli
from src.regularizers import (
    DRAGANPenalty,
    DriftPenalty,
    GradientPenalty,
    R1Penalty,
    R2Penalty,
    WeightClipping,
)
from tests.helpers import REPO_ROOT

BAD_VALUES = (0, -1, math.nan, math.inf)
# None-valued by default, so absent from the dumped numbers; fuzzed too.
UNSET_NUMERIC = (
    "model.init_args.ema_decay",
    "trainer.min_epochs",
    "trainer.min_steps",
    "trainer.limit_train_batches",
    "trainer.limit_val_batches",
    "trainer.limit_test_batches",
    "trainer.val_check_interval",
    "trainer.num_sanity_val_steps",
    "trainer.gradient_clip_val",
    "trainer.devices",
    "checkpoint.every_n_train_steps",
    "checkpoint.every_n_epochs",
)
# Values that are valid and accepted (each with its meaning); every other case must be refused.
ACCEPTED: dict[str, tuple[float, ...]] = {
    "seed_everything": (0, -1),  # any seed (Lightning maps an out-of-range one into range, with a warning)
    "trainer.max_epochs": (0, -1),  # 0: no training; -1: no limit
    "trainer.max_steps": (0, -1),
    "trainer.min_epochs": (0, -1),
    "trainer.min_steps": (0, -1),
    "trainer.overfit_batches": (0,),
    "trainer.log_every_n_steps": (0,),  # 0: no logging
    "trainer.reload_dataloaders_every_n_epochs": (0,),
    "trainer.limit_train_batches": (0,),
    "trainer.limit_val_batches": (0,),  # 0: no validation
    "trainer.limit_test_batches": (0,),
    "trainer.num_sanity_val_steps": (0, -1),  # -1: the whole validation set
    "trainer.gradient_clip_val": (0,),
    "model.init_args.generator_optimizer.init_args.lr": (0,),  # torch's range: lr >= 0
    "model.init_args.critic_optimizer.init_args.lr": (0,),
    "model.init_args.generator_optimizer.init_args.betas": (0,),
    "model.init_args.critic_optimizer.init_args.betas": (0,),
    "model.init_args.generator_optimizer.init_args.eps": (0,),
    "model.init_args.critic_optimizer.init_args.eps": (0,),
    "model.init_args.generator_optimizer.init_args.weight_decay": (0,),
    "model.init_args.critic_optimizer.init_args.weight_decay": (0,),
    "model.init_args.generator.init_args.depth": (0,),  # an MLP without hidden layers
    "model.init_args.critic.init_args.depth": (0,),
    "data.init_args.val_fraction": (0,),
    "data.init_args.val_batches": (0,),
    "data.init_args.seed": (0, -1),
    "data.init_args.num_workers": (0,),
    "regularizer.init_args.weight": (0,),  # 0 switches the penalty off (and the run warns)
    "regularizer.init_args.target": (0,),  # the zero-centred penalty
    "regularizer.init_args.norm": (math.inf,),  # the L-infinity gradient-norm penalty
    "checkpoint.save_top_k": (0, -1),  # none / all
    "checkpoint.every_n_train_steps": (0,),  # 0: off
    "checkpoint.every_n_epochs": (0,),
    "best.init_args.save_top_k": (0, -1),
    "quality.init_args.seed": (0, -1),
    "quality.init_args.floor_draws": (0,),  # 0: no real-against-real floor
}
GROUP_CLASSES = {
    "checkpoint": "ModelCheckpoint",
    "samples": "SampleGrid",
    "preemption": "PreemptionCheckpoint",
}


def _numeric_leaves(tree: Any, prefix: str = "") -> list[str]:
    if isinstance(tree, dict):
        return [k for key, value in tree.items() for k in _numeric_leaves(value, f"{prefix}{key}.")]
    if isinstance(tree, list):
        return [k for i, value in enumerate(tree) for k in _numeric_leaves(value, f"{prefix}{i}.")]
    numeric = isinstance(tree, (int, float)) and not isinstance(tree, bool)
    return [prefix[:-1]] if numeric else []


def _owner(dump: dict, key: str) -> tuple[list[str], dict]:
    """The path of the object an option belongs to, and its config (``model.init_args.generator`` for ``dim``)."""
    parts = [p for p in key.split(".") if not p.isdigit()][:-1]
    if parts and parts[-1] == "init_args":
        parts = parts[:-1]
    node: Any = dump
    for part in parts:
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return parts, node if isinstance(node, dict) else {}


def names_option(message: str, key: str, dump: dict) -> bool:
    """Whether ``message`` names the option ``key``.

    Either its dotted name (``model.critic_optimizer.init_args.lr``, with or without ``init_args``), or, for an
    object's own argument check, its name next to the object's class or key (``GradientPenalty weight``).
    jsonargparse's echo of the whole given value (``Given value: ...``) does not count.
    """
    message = message.split("Given value")[0]
    base = re.sub(r"\.\d+$", "", key)  # betas.0 -> betas
    parts = base.split(".")
    short = ".".join([parts[0], *parts[2:]]) if len(parts) > 2 and parts[1] == "init_args" else base
    if any(form in message for form in {base, short, base.replace(".init_args", "")}):
        return True
    owner, node = _owner(dump, key)
    if not owner or owner == ["trainer"]:
        return False  # top-level and Trainer options must be named in full
    names = {owner[-1], GROUP_CLASSES.get(owner[-1], "")}
    names.add(str(node.get("class_path", "")).rsplit(".", 1)[-1])
    leaf = parts[-1]
    return bool(re.search(rf"\b{leaf}\b", message)) and any(n and n in message for n in names)


def attempt(cli: WGANCLI, base: Any, key: str, value: float) -> str | None:
    """Run the CLI's steps after parsing with ``key`` set to ``value``; the error message, or ``None``."""
    config = base.clone()
    if re.search(r"\.\d+$", key):  # an element of a list option (betas)
        list_key, index = key.rsplit(".", 1)
        items = list(config[list_key])
        items[int(index)] = float(value) if isinstance(items[int(index)], float) else value
        config[list_key] = items
    else:
        config[key] = float(value) if isinstance(config.get(key), float) else value  # YAML 0 is 0.0 there
    cli.config = config
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            cli.before_instantiate_classes()
            cli.instantiate_classes()
            cli.after_instantiate_classes()
    except SystemExit:
        return err.getvalue() or "SystemExit"
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None


def fuzz(args: list[str], skip: set[str] | None = None) -> tuple[list[str], set[str], int]:
    """Every bad value of every numeric option of the config ``args`` parse to; the failures found."""
    cli = build_cli(args)
    base = cli.config.clone()
    dump = yaml.safe_load(cli.parser.dump(base, skip_none=False))
    keys = [k for k in [*_numeric_leaves(dump), *UNSET_NUMERIC] if not (skip and k in skip)]
    failures: list[str] = []
    for key in dict.fromkeys(keys):
        accepted = ACCEPTED.get(re.sub(r"\.\d+$", "", key), ())
        for value in BAD_VALUES:
            message = attempt(cli, base, key, value)
            valid = any(value == a or (math.isinf(value) and a == value) for a in accepted)
            if message is None and not valid:
                failures.append(f"{key}={value}: accepted (add it to ACCEPTED if it is a valid value)")
            elif message is not None and valid:
                failures.append(f"{key}={value}: listed in ACCEPTED but refused: {message[:300]}")
            elif message is not None and not names_option(message, key, dump):
                failures.append(f"{key}={value}: the message does not name the option: {message[:400]}")
    return failures, set(keys), len(keys) * len(BAD_VALUES)


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz_runs")


def test_every_numeric_option_of_the_default_config(runs_dir: Path) -> None:
    failures, keys, cases = fuzz([f"--trainer.logger.init_args.save_dir={runs_dir}"])
    assert cases > 150 and "regularizer.init_args.weight" in keys
    assert not failures, f"{len(failures)} of {cases} cases:\n" + "\n".join(failures)
    assert not any(runs_dir.iterdir()), "a refused option left a run folder"


def test_every_numeric_option_of_the_toy_config(runs_dir: Path) -> None:
    default = build_cli([f"--trainer.logger.init_args.save_dir={runs_dir}"])
    default_dump = yaml.safe_load(default.parser.dump(default.config, skip_none=False))
    args = ["--config", "configs/toy.yaml", f"--trainer.logger.init_args.save_dir={runs_dir}"]
    toy = build_cli(args)
    toy_dump = yaml.safe_load(toy.parser.dump(toy.config, skip_none=False))
    # the options the default config's test covered: same key, same class
    same = {
        k
        for k in _numeric_leaves(toy_dump)
        if k in _numeric_leaves(default_dump)
        and _owner(toy_dump, k)[1].get("class_path") == _owner(default_dump, k)[1].get("class_path")
    }
    failures, keys, cases = fuzz(args, skip=same | set(UNSET_NUMERIC))
    assert {"model.init_args.generator.init_args.hidden_dim", "quality.init_args.n_std"} <= keys
    assert not failures, f"{len(failures)} of {cases} cases:\n" + "\n".join(failures)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    ("make", "option"),
    [
        (lambda v: GradientPenalty(weight=v), "weight"),
        (lambda v: GradientPenalty(target=v), "target"),
        (lambda v: DRAGANPenalty(perturb_scale=v), "perturb_scale"),
        (lambda v: R1Penalty(weight=v), "weight"),
        (lambda v: R2Penalty(weight=v), "weight"),
        (lambda v: DriftPenalty(epsilon=v), "epsilon"),
        (lambda v: WeightClipping(clip_value=v), "clip_value"),
    ],
    ids=["gp-weight", "gp-target", "dragan-perturb", "r1-weight", "r2-weight", "drift-epsilon", "clip-value"],
)
def test_the_python_api_refuses_non_finite_penalty_settings(make: Any, option: str, value: float) -> None:
    """A NaN weight used to pass ``weight < 0`` and switch the penalty off (``active`` was False)."""
    with pytest.raises(ValueError, match=rf"{option} must be a finite number"):
        make(value)


def test_a_nan_gradient_norm_is_refused_but_infinity_is_the_linf_penalty() -> None:
    with pytest.raises(ValueError, match="norm must be >= 1"):
        GradientPenalty(norm=math.nan)
    assert GradientPenalty(norm=math.inf).norm == math.inf


# ------------------------------------------------------------------------------------------- bad files
def _build_error(args: list[str]) -> str:
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            build_cli(args)
    except SystemExit:
        return err.getvalue()
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    raise AssertionError(f"{args} was accepted")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"model:\n  n_critic: [1, 2\ntrainer: {\n", r"YAML syntax error: .*line 2, column 13"),
        (b"model:\n\tn_critic: 3\n", r"YAML syntax error: .*line 2, column 1"),
        (b"- 1\n- 2\n", r"holds a mapping of options .* holds a list"),
        (b"PK\x03\x04\x80\x81\x00binary", r"not a YAML text file"),
        (b"model:\n  bogus_option: 1\n", r"bogus_option"),
        (b"regularizer:\n  init_args: {weight: .nan}\n", r"regularizer\.weight must be a finite number"),
    ],
    ids=["unclosed-list", "tab", "list", "binary", "unknown-option", "nan-weight"],
)
def test_bad_config_files_name_the_file_or_the_option(
    tmp_path: Path, runs_dir: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    message = _build_error(["--config", str(path), f"--trainer.logger.init_args.save_dir={runs_dir}"])
    assert re.search(expected, message, re.S), message[-2000:]
    if "option" not in expected and "regularizer" not in expected:
        assert str(path) in message


def _checkpoints(folder: Path) -> dict[str, Path]:
    """A truncated, an empty, a garbage, a non-dict and an absent checkpoint."""
    folder.mkdir(parents=True, exist_ok=True)
    good = folder / "good.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(64)}}, good)
    data = good.read_bytes()
    files = {name: folder / f"{name}.ckpt" for name in ("truncated", "empty", "garbage", "list")}
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["empty"].write_bytes(b"")
    files["garbage"].write_bytes(b"not a checkpoint " * 20)
    torch.save([1, 2, 3], files["list"])
    files["absent"] = folder / "absent.ckpt"
    return files


def test_bad_checkpoints_fail_before_anything_is_built_naming_the_file(
    tmp_path: Path, runs_dir: Path
) -> None:
    for name, path in _checkpoints(tmp_path).items():
        message = _build_error(
            [
                "--config",
                "configs/toy.yaml",
                f"--trainer.logger.init_args.save_dir={runs_dir}",
                "--ckpt_path",
                str(path),
            ]
        )
        assert str(path) in message, f"{name}: {message[-1000:]}"
        expected = (
            "not found"
            if name == "absent"
            else "not a Lightning checkpoint"
            if name == "list"
            else "Cannot read"
        )
        assert expected in message, f"{name}: {message[-1000:]}"
    assert not any(runs_dir.iterdir())


def test_an_unreadable_image_folder_names_the_folder(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(b"not a png")
    cli = build_cli(
        [
            "--config",
            "configs/folder.yaml",
            f"--data.data_dir={tmp_path / 'images'}",
            "--trainer.logger=false",
        ]
    )
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "images"))):
        cli.datamodule.setup("fit")


# ------------------------------------------------------------------------------- the command-line exit
def _train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "src.train", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )


def test_the_command_line_exits_before_any_folder_naming_the_option(tmp_path: Path) -> None:
    """A negative learning rate was torch's "Invalid learning rate" after an empty run folder was created."""
    proc = _train(
        "--model.critic_optimizer.init_args.lr=-1", f"--trainer.logger.init_args.save_dir={tmp_path}"
    )
    assert proc.returncode != 0
    assert "model.critic_optimizer.init_args.lr=-1.0 is invalid" in proc.stderr, proc.stderr[-2000:]
    assert not any(tmp_path.iterdir()), "a run folder was created"


def test_the_command_line_names_a_config_file_with_a_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("model:\n  n_critic: [1, 2\n")
    proc = _train("--config", str(path), f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}")
    assert proc.returncode == 2
    assert f"--config {path}: YAML syntax error" in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "runs").exists()
