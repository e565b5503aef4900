"""ImageQuality under DDP: two CPU processes (gloo) log the same FID, KID, IS, precision and recall as one process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # three launches of torch and Lightning (one of them two processes)

SCRIPT = Path(__file__).resolve().parent / "ddp_image_quality.py"


def launch(out: Path, devices: int) -> list[dict]:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(out), str(devices)],
        cwd=SCRIPT.parents[1],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return [json.loads((out / f"devices{devices}-rank{r}.json").read_text()) for r in range(devices)]


def test_two_processes_log_what_one_process_logs(tmp_path: Path) -> None:
    (one,) = launch(tmp_path, 1)
    two = launch(tmp_path, 2)
    assert [r["world_size"] for r in two] == [2, 2]
    # Every rank holds the synced values (ModelCheckpoint decides the same on all ranks).
    assert two[0]["metrics"] == two[1]["metrics"]
    single, ddp = one["metrics"], two[0]["metrics"]
    # diverse digits, not a degenerate case
    assert single["val/is"] > 5 and single["val/classes_covered"] == 10
    assert 0 < single["val/precision"] <= 1 and 0 < single["val/recall"] <= 1
    for key in ("val/fid", "val/kid", "val/is", "val/is_std", "val/precision", "val/recall"):
        assert ddp[key] == pytest.approx(single[key], rel=1e-4), key
    assert ddp["val/kid_std"] == pytest.approx(single["val/kid_std"], abs=1e-3)  # rounding noise: same set
    assert ddp["val/classes_covered"] == single["val/classes_covered"]
    assert ddp["val/class_kl"] == pytest.approx(single["val/class_kl"], rel=1e-6)
    assert one["real_count"] == two[0]["real_count"] == 301
    # Each rank cached its own share of the real features.
    assert len(list((tmp_path / "cache2").glob("*rank*of2.pt"))) == 2
