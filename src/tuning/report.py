"""What a study leaves behind: a summary table, Optuna's plots as PNGs, and ``best.yaml``."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from src.tuning.storage import RUN_DIR  # noqa: E402
from src.tuning.trial import SKIPPED  # noqa: E402

PLOTS = {
    "history": optuna.visualization.matplotlib.plot_optimization_history,
    "importances": optuna.visualization.matplotlib.plot_param_importances,
    "slice": optuna.visualization.matplotlib.plot_slice,
}


def _short(key: str) -> str:
    parts = [p for p in key.split(".") if p != "init_args"]
    return ".".join(parts[-2:])


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def summary_table(study: optuna.Study, metric: str) -> str:
    """One row per trial: number, state, objective value, the searched values and the run directory.

    Trials a worker opened after the study had its ``n_trials`` (user attribute ``skipped``) are left out.
    """
    trials = [t for t in study.get_trials(deepcopy=False) if SKIPPED not in t.user_attrs]
    keys = sorted({k for t in trials for k in t.params})
    best = study.best_trial.number if _has_complete(study) else None
    header = ["trial", "state", metric, *(_short(k) for k in keys), "run directory"]
    rows = [header]
    for t in trials:
        mark = "*" if t.number == best else ""
        value = t.value if t.state == TrialState.COMPLETE else t.intermediate_values.get(t.last_step)
        state = t.state.name.lower()
        if t.state == TrialState.PRUNED and t.last_step is not None:
            state += f"@{t.last_step}"
        rows.append(
            [
                f"{t.number}{mark}",
                state,
                _fmt(value),
                *(_fmt(t.params.get(k)) for k in keys),
                str(t.user_attrs.get(RUN_DIR, "-")),
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if best is not None:
        lines.append(
            f"* best: trial {best}, {metric} = {_fmt(study.best_value)} ({study.direction.name.lower()})"
        )
    return "\n".join(lines)


def _has_complete(study: optuna.Study) -> bool:
    return any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False))


def save_plots(study: optuna.Study, folder: Path) -> dict[str, str]:
    """Optuna's optimisation history, parameter importances and slice plot as PNGs in ``folder``.

    Returns:
        Plot name to the file written, or to the reason it was not (too few finished trials).
    """
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    for name, plot in PLOTS.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
                axes = plot(study)
        except (ValueError, RuntimeError, ZeroDivisionError) as error:
            written[name] = f"not drawn: {error}"
            continue
        axes = axes.flat[0] if hasattr(axes, "flat") else axes
        figure = axes.figure
        path, tmp = folder / f"{name}.png", folder / f"{name}.{os.getpid()}.png"
        figure.savefig(tmp, dpi=100, bbox_inches="tight")
        tmp.replace(path)  # workers finishing together each write a whole file
        plt.close(figure)
        written[name] = str(path)
    return written
