"""``python -m src.evaluate`` on checkpoints of short digits runs, and FID falling as the generator trains."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from src.cli import build_cli
from src.evaluate import main as evaluate_main
from src.load_run import find_run_config, load_run
from src.train import main

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-generator-step run of the default (digits) configuration; returns its run directory."""
    save_dir = tmp_path_factory.mktemp("runs")
    main(
        [
            "--model.max_generator_steps=2",
            "--trainer.enable_progress_bar=false",
            f"--trainer.logger.init_args.save_dir={save_dir}",
        ]
    )
    return save_dir / "digits" / "version_0"


def test_the_run_tests_last_ckpt_as_test_and_the_best_as_test_best(short_run: Path) -> None:
    rows = list(csv.DictReader(open(short_run / "metrics.csv")))
    for prefix in ("test", "test_best"):
        for name in (
            "fid",
            "fid_floor",
            "fid_floor_std",
            "is",
            "kid",
            "precision",
            "recall",
            "recall_floor",
            "wasserstein",
        ):
            assert any(row.get(f"{prefix}/{name}") for row in rows), f"{prefix}/{name}"
    # Held out: the test noise is not the validation noise, so the numbers differ even where the weights agree.
    val_fid = next(float(r["val/fid"]) for r in rows if r.get("val/fid"))
    assert next(float(r["test_best/fid"]) for r in rows if r.get("test_best/fid")) != val_fid


@pytest.mark.parametrize(("checkpoint", "prefix"), [("best-fid-*.ckpt", "test_best"), ("last.ckpt", "test")])
def test_evaluate_reproduces_the_runs_test_metrics(
    short_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture, checkpoint: str, prefix: str
) -> None:
    ckpt = next((short_run / "checkpoints").glob(checkpoint))
    out = tmp_path / "metrics.json"
    report = evaluate_main(["--ckpt", str(ckpt), "--out", str(out)])
    printed = capsys.readouterr().out
    assert "test/fid" in printed and str(out) in printed  # printed as well as written
    assert json.loads(out.read_text()) == report
    assert report["config"] == str((short_run / "config.yaml").resolve())
    assert report["num_samples"] == {"ImageQuality": 800}
    metrics = report["metrics"]
    for key in ("test/fid", "test/is", "test/is_std", "test/kid", "test/kid_std", "test/classes_covered"):
        assert key in metrics, key
    # The same checkpoint, test noise seed, sample count and real reference as the run's own test stage.
    rows = list(csv.DictReader(open(short_run / "metrics.csv")))
    for name in ("fid", "precision", "recall", "fid_floor", "recall_floor"):
        logged = next(float(r[f"{prefix}/{name}"]) for r in rows if r.get(f"{prefix}/{name}"))
        assert metrics[f"test/{name}"] == pytest.approx(logged, rel=1e-4), name
    # The real features were read from the run's cache, not computed again into another file: one file for the
    # validation reference (800 of the 1455 training digits), one for the test reference (another 800) and one
    # for all 1797 digits (the floor's pool).
    cached = sorted(p.name.split("-")[1:3] for p in (short_run.parents[1] / "feature_cache").glob("*.pt"))
    assert cached == [["all", "1797"], ["train", "800"], ["train", "800"]]
    assert not (REPO_ROOT / "feature_cache").exists() and not (short_run.parent / "version_1").exists()


@pytest.mark.slow  # a fresh interpreter imports torch and Lightning: 10-40 s on a shared CPU
def test_evaluate_runs_as_a_module(short_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    ckpt = short_run / "checkpoints" / "last.ckpt"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "src.evaluate",
            "--ckpt",
            str(ckpt),
            "--num_samples",
            "300",
            "--out",
            str(out),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    report = json.loads(out.read_text())
    assert report["num_samples"] == {"ImageQuality": 300} and "test/fid" in report["metrics"]
    assert "test/fid" in proc.stdout


def test_evaluate_num_samples(short_run: Path, tmp_path: Path) -> None:
    report = evaluate_main(
        [
            "--ckpt",
            str(short_run / "checkpoints" / "last.ckpt"),
            "--num_samples",
            "300",
            "--out",
            str(tmp_path / "m.json"),
        ]
    )
    assert report["num_samples"] == {"ImageQuality": 300}
    assert report["generator_steps"] == 2
    assert json.loads((tmp_path / "m.json").read_text())["metrics"] == report["metrics"]


def test_load_run_rebuilds_the_model_with_its_weights(short_run: Path) -> None:
    import torch

    ckpt = short_run / "checkpoints" / "last.ckpt"
    cli = load_run(ckpt)
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert cli.model.generator_steps == 2
    for name, value in cli.model.state_dict().items():
        assert torch.equal(value, state["state_dict"][name]), name
    assert cli.trainer.logger is None


def test_a_checkpoint_outside_a_run_needs_config(tmp_path: Path) -> None:
    lonely = tmp_path / "a" / "b" / "c" / "d" / "x.ckpt"
    lonely.parent.mkdir(parents=True)
    lonely.write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="--config"):
        find_run_config(lonely)


@pytest.mark.heavy
@pytest.mark.slow  # 100 generator steps on 16 px digits: about 30 s on one CPU core
def test_fid_falls_as_the_generator_trains(tmp_path: Path) -> None:
    cli = build_cli(
        [
            "--model.max_generator_steps=100",
            "--model.n_critic=5",  # 500 critic batches: the run this test was sized for
            "--data.image_size=16",
            "--model.generator.init_args.dim=16",
            "--model.critic.init_args.dim=16",
            "--model.generator_optimizer.init_args.lr=5e-4",
            "--model.critic_optimizer.init_args.lr=5e-4",
            "--trainer.logger=false",
            "--trainer.enable_progress_bar=false",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )
    cli.trainer.validate(cli.model, datamodule=cli.datamodule, verbose=False)
    untrained = float(cli.trainer.callback_metrics["val/fid"])
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    trained = float(cli.trainer.callback_metrics["val/fid"])
    assert cli.model.generator_steps == 100
    assert trained < 0.5 * untrained, (untrained, trained)
