"""Measure a checkpoint: ``python -m src.evaluate --ckpt PATH [--config FILE] [--num_samples N] [--out FILE.json]``.

Rebuilds the model, datamodule and metric callbacks from the run's ``config.yaml`` (or ``--config``), runs
Lightning's test loop on the checkpoint (with the callbacks' held-out ``test_seed``, as the run's own test of
``last.ckpt`` and of the best checkpoint), and prints and writes every ``test/...`` metric of the checkpoint it
is given: FID, IS, KID, precision and recall (:class:`~src.evaluation.ImageQuality`), the toy metrics
(:class:`~src.evaluation.ToyMetrics`) and the critic's Wasserstein estimate on the test split. Any other
argument is a CLI override applied after the config, e.g. ``--trainer.devices=1`` or
``--quality=src.evaluation.ImageQuality``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch import LightningDataModule
from lightning.pytorch.utilities import rank_zero_only, rank_zero_warn

from src.evaluation import ImageQuality, ScheduledEvaluation, ToyMetrics
from src.load_run import load_run
from src.utils.checkpoint import load_checkpoint
from src.utils.resume import RUN_CONFIG_KEY


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """Split the command line into this script's options and CLI overrides."""
    parser = argparse.ArgumentParser(
        prog="python -m src.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--ckpt", required=True, help="checkpoint written by src.train")
    parser.add_argument("--config", default=None, help="config file; default: <run dir>/config.yaml")
    parser.add_argument(
        "--num_samples",
        type=int,
        default=None,
        help="generated samples (default: the callbacks' test setting)",
    )
    parser.add_argument("--out", default=None, help="write the metrics to this JSON file")
    return parser.parse_known_args(argv)


def feature_cache_dir(config: dict[str, Any], run_dir: Path) -> Path:
    """Where the run cached its real features: ``<logger save_dir>/feature_cache`` as during training.

    Args:
        config: The run's config (a parsed ``config.yaml``).
        run_dir: The run directory, whose own ``feature_cache`` is used when the config's save_dir does not exist
            here (relative paths are relative to where training ran, usually the working directory).
    """
    loggers = (config.get("trainer") or {}).get("logger")
    for logger in loggers if isinstance(loggers, list) else [loggers]:
        save_dir = (
            ((logger or {}).get("init_args") or {}).get("save_dir") if isinstance(logger, dict) else None
        )
        if save_dir and Path(save_dir).is_dir():
            return Path(save_dir) / "feature_cache"
    return run_dir / "feature_cache"


def check_testable(ckpt: str, datamodule: Any) -> None:
    """Refuse, saying what to do instead, a checkpoint whose data has no test split (a language model's).

    Raises:
        ValueError: The datamodule has no ``test_dataloader``.
    """
    if type(datamodule).test_dataloader is not LightningDataModule.test_dataloader:
        return
    name = type(datamodule).__name__
    if hasattr(datamodule, "vocabulary"):
        raise ValueError(
            f"--ckpt {ckpt} is a language model ({name}): its text has no test split, so src.evaluate has nothing "
            "to test. Its n-gram JS divergences on the held-out lines (val/js1 ... val/js4) were measured while it "
            "trained (<run dir>/metrics.csv, or W&B); `python -m src.generate --ckpt "
            f"{ckpt} --n 640` writes sample lines from it."
        )
    raise ValueError(
        f"--ckpt {ckpt} was trained on {name}, which has no test split (no test_dataloader), so src.evaluate has "
        "nothing to test; its validation metrics were logged while it trained (<run dir>/metrics.csv)."
    )


def evaluate(
    ckpt: str, config: str | None = None, num_samples: int | None = None, overrides: list[str] | None = None
) -> dict[str, Any]:
    """Test ``ckpt`` with the metric callbacks of its run and return the metrics and where they came from.

    Args:
        ckpt: The checkpoint.
        config: The config file; ``None``: the config saved in the checkpoint (:func:`src.load_run.run_config`).
        num_samples: Generated samples for the metric callbacks (``ImageQuality.test_num_samples``,
            ``ToyMetrics.num_points``); ``None`` keeps the run's settings.
        overrides: CLI overrides applied after the config.

    Returns:
        ``{"metrics": {name: float}, "ckpt": ..., "config": ..., "generator_steps": ..., ...}``.
    """
    # fails fast, naming the file, when it is truncated or unsafe
    checkpoint = load_checkpoint(ckpt, mmap=True)
    cli = load_run(ckpt, config, overrides, load_weights=False)
    check_testable(ckpt, cli.datamodule)
    text = cli.config_path.read_text() if cli.config_path is not None else checkpoint[RUN_CONFIG_KEY]
    run_config = yaml.safe_load(text) or {}
    run_dir = Path(ckpt).parent.parent if Path(ckpt).parent.name == "checkpoints" else Path(ckpt).parent
    callbacks = [cb for cb in cli.trainer.callbacks if isinstance(cb, ScheduledEvaluation)]
    if not callbacks:
        rank_zero_warn(
            "The run's config has no evaluation callback (quality: null), so only test/wasserstein is measured; "
            "add one with e.g. --quality=src.evaluation.ImageQuality --quality.init_args.feature_extractor=digits"
        )
    for callback in callbacks:
        if isinstance(callback, ImageQuality):
            callback.progress = True
            if callback.cache_dir is None:  # the run's cache of real features, not the working directory's
                callback.cache_dir = str(feature_cache_dir(run_config, run_dir))
            if num_samples is not None:
                callback.test_num_samples = num_samples
        elif isinstance(callback, ToyMetrics) and num_samples is not None:
            callback.num_points = num_samples
    # weights_only: no pickled code runs, whatever TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD says
    (results,) = cli.trainer.test(
        cli.model, datamodule=cli.datamodule, ckpt_path=ckpt, verbose=False, weights_only=True
    )
    samples = {
        type(cb).__name__: (cb.test_num_samples or cb.num_samples)
        if isinstance(cb, ImageQuality)
        else getattr(cb, "num_points", None)
        for cb in callbacks
    }
    return {
        "metrics": {k: float(v) for k, v in sorted(results.items())},
        "ckpt": str(Path(ckpt).resolve()),
        "config": str(Path(cli.config_path).resolve())
        if cli.config_path is not None
        else f"{Path(ckpt).resolve()} (the run config saved in it)",
        "generator_steps": int(getattr(cli.model, "generator_steps", 0)),
        "num_samples": samples,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


@rank_zero_only
def report_metrics(report: dict[str, Any], out: str | None) -> None:
    """Print the metrics as a table and write the whole report as JSON (rank zero only)."""
    width = max((len(k) for k in report["metrics"]), default=10)
    print(f"Metrics of {report['ckpt']} (generator step {report['generator_steps']}):")
    for name, value in report["metrics"].items():
        print(f"  {name:<{width}}  {value:.6g}")
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"Wrote {path}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse the command line, evaluate, print a table and write the JSON file."""
    args, overrides = parse_args(sys.argv[1:] if argv is None else argv)
    report = evaluate(args.ckpt, args.config, args.num_samples, overrides)
    report_metrics(report, args.out)
    return report


if __name__ == "__main__":
    main()
