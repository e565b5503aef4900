"""Reliability, round 2 (issue 22): bad data, full disks, unclear errors and resources, as a user meets them."""

from __future__ import annotations

import csv
import errno
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.cli import build_cli
from src.data import ImageFolderDataModule, TextDataModule
from src.data.errors import DatasetNotFoundError
from src.data.folder import ImageTooLargeError
from src.evaluate import main as evaluate_main
from src.generate import main as generate_main
from src.train import main as train_main
from src.utils import atomic_io
from src.utils.atomic_io import AtomicCheckpointIO, CheckpointSaveError
from src.utils.checkpoint import load_checkpoint
from src.utils.csv_logger import ResumableCSVLogger
from tests.helpers import REPO_ROOT, TOY


# ------------------------------------------------------------------------ item 5: NaN pixels in float images
def _float_folder(root: Path) -> Path:
    ramp = np.tile(np.linspace(0, 1, 32, dtype=np.float32), (32, 1))
    holes = ramp.copy()
    holes[:4, :4] = np.nan
    root.mkdir()
    for name, values in (
        ("a.tif", ramp),
        ("b.tif", ramp),
        ("holes.tif", holes),
        ("blank.tif", ramp * np.nan),
    ):
        Image.fromarray(values, mode="F").save(root / name, "TIFF")
    return root


@pytest.mark.parametrize("verify", [True, False])
def test_nan_pixels_warn_naming_the_file_and_an_all_nan_image_is_refused(
    tmp_path: Path, verify: bool
) -> None:
    folder = _float_folder(tmp_path / "images")
    dm = ImageFolderDataModule(
        data_dir=str(folder), image_size=32, channels=1, batch_size=1, val_fraction=0.0, verify=verify
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dm.setup("fit")
        images = [dm.datasets["train"][i][0] for i in range(len(dm.datasets["train"]))]
    messages = " ".join(str(w.message) for w in caught)
    assert "holes.tif" in messages and "16 NaN pixel" in messages
    assert "blank.tif" in messages and "every pixel is NaN" in messages
    assert all(torch.isfinite(x).all() for x in images)
    assert not any(
        torch.equal(x, torch.full_like(x, -1.0)) for x in images
    )  # no all-black picture trained on
    if verify:
        assert len(dm.datasets["train"]) == 3  # the all-NaN image was dropped up front


# ----------------------------------------------------------------------- item 6: a corpus of blank lines
def test_a_corpus_of_whitespace_only_lines_is_an_error_naming_the_file_and_counts(tmp_path: Path) -> None:
    corpus = tmp_path / "blank.txt"
    corpus.write_text(" \n\t\n   \r\n" * 100)
    with pytest.raises(
        ValueError, match=r"no usable line in .*blank\.txt: 301 lines read, 301 empty or whitespace"
    ):
        TextDataModule(path=str(corpus), batch_size=2).setup("fit")
    corpus.write_text("  \nthe cat\n\t\nthe dog\n" * 4)
    assert (
        TextDataModule(path=str(corpus), batch_size=2, val_fraction=0.0).read() == ["the cat", "the dog"] * 4
    )


# ------------------------------------------------------------ item 7: run files written atomically, full disk
def _no_space(*args: object, **kwargs: object) -> None:
    """A writer that writes part of its file (its first path argument), then fails as a full disk does."""
    Path(next(str(a) for a in args if isinstance(a, (str, Path)))).write_bytes(b"partial")
    raise OSError(errno.ENOSPC, "No space left on device")


def test_hparams_and_a_metrics_header_rewrite_survive_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logger = ResumableCSVLogger(tmp_path, name="run", version=0)
    logger.log_hyperparams({"lr": 0.1})
    logger.log_metrics({"a": 1.0}, step=0)
    logger.save()
    hparams, metrics = Path(logger.log_dir) / "hparams.yaml", Path(logger.log_dir) / "metrics.csv"
    before = hparams.read_text(), metrics.read_text()
    monkeypatch.setattr("src.utils.csv_logger.save_hparams_to_yaml", _no_space)
    with pytest.raises(OSError, match="No space"):
        logger.log_hyperparams({"lr": 0.2})

    def rows_on_a_full_disk(self: csv.DictWriter, rows: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(csv.DictWriter, "writerows", rows_on_a_full_disk)
    logger.log_metrics({"a": 2.0, "b": 3.0}, step=1)  # a new column: the whole file is rewritten
    with pytest.raises(OSError, match="No space"):
        logger.save()
    assert (hparams.read_text(), metrics.read_text()) == before
    assert sorted(p.name for p in hparams.parent.iterdir()) == ["hparams.yaml", "metrics.csv"]  # no temp file


def test_cli_runs_write_csv_files_and_sample_grids_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = build_cli([*TOY, f"--trainer.logger.init_args.save_dir={tmp_path}"])
    assert isinstance(cli.trainer.logger, ResumableCSVLogger)
    monkeypatch.setattr("src.callbacks.sample_grid.save_image", _no_space)  # the disk fills up at the grid
    with pytest.raises(OSError, match="No space"):
        train_main(["--model.max_generator_steps=1", "--quality=null", "--best=null", "--trainer.limit_val_batches=1",
                    "--model.generator.init_args.dim=8", "--model.critic.init_args.dim=8",
                    "--trainer.enable_progress_bar=false", f"--trainer.logger.init_args.save_dir={tmp_path}"])  # fmt: skip
    assert not list(tmp_path.rglob("*.png")) and not list(tmp_path.rglob("*.tmp"))


def test_a_full_disk_while_saving_a_checkpoint_says_so_and_keeps_the_previous_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"w": torch.ones(3)}, target)
    real_save = torch.save

    def torch_save_on_a_full_disk(obj: object, file: object) -> None:  # what torch's zip writer raises
        real_save({"partial": torch.zeros(10)}, file)
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(atomic_io.torch, "save", torch_save_on_a_full_disk)
    with pytest.raises(CheckpointSaveError) as raised:
        AtomicCheckpointIO().save_checkpoint({"w": torch.zeros(3)}, target)
    message = str(raised.value)
    assert f"the disk holding {target.parent} is full" in message and "MiB free" in message
    assert "the previous last.ckpt is intact" in message and "--ckpt_path last" in message
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(target)["w"], torch.ones(3))
    assert [p.name for p in target.parent.iterdir()] == ["last.ckpt"]


REAL_FULL_DISK = """
import sys, torch
from pathlib import Path
from src.utils.atomic_io import AtomicCheckpointIO, CheckpointSaveError, atomic_write_text
disk = Path(sys.argv[1])
target = disk / "last.ckpt"
AtomicCheckpointIO().save_checkpoint({"w": torch.ones(10)}, target)
atomic_write_text(disk / "config.yaml", "seed: 1\\n")
(disk / "filler").write_bytes(b"x" * 700_000)
try:
    AtomicCheckpointIO().save_checkpoint({"w": torch.randn(200_000)}, target)
except CheckpointSaveError as error:
    print("REFUSED", error)
try:
    atomic_write_text(disk / "config.yaml", "seed: 2\\n" * 100_000)
except OSError as error:
    print("CONFIG", error.errno)
assert torch.equal(torch.load(target, weights_only=True)["w"], torch.ones(10))
assert (disk / "config.yaml").read_text() == "seed: 1\\n"
print("LEFT", sorted(p.name for p in disk.iterdir()))
"""


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare for a private tmpfs")
def test_a_real_full_disk_in_a_one_megabyte_tmpfs(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    (tmp_path / "full.py").write_text(REAL_FULL_DISK)
    script = f"mount -t tmpfs -o size=1m tmpfs {disk} && exec {sys.executable} {tmp_path / 'full.py'} {disk}"
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("unprivileged user and mount namespaces are not available here")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (
        "REFUSED [Errno 28] Cannot save" in proc.stdout and f"the disk holding {disk} is full" in proc.stdout
    )
    assert "the previous last.ckpt is intact" in proc.stdout and f"CONFIG {errno.ENOSPC}" in proc.stdout
    assert "LEFT ['config.yaml', 'filler', 'last.ckpt']" in proc.stdout


# ------------------------------------------------------------------------------- item 8: unclear errors
def test_a_text_config_without_data_path_or_text_files_says_so_in_one_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^data.path is required: pass --data.path=FILE") as raised:
        build_cli(["--config", "configs/text_small.yaml"])
    assert "Union" not in str(raised.value)
    with pytest.raises(
        DatasetNotFoundError, match=r"is a folder without files matching data.pattern='\*.txt'"
    ):
        build_cli(["--config", "configs/text_small.yaml", f"--data.path={tmp_path}"])


def test_evaluate_on_a_text_checkpoint_says_what_it_is(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"line {i % 7} of the corpus\n" for i in range(200)))
    train_main(["--config", "configs/text_small.yaml", f"--data.path={corpus}", "--model.max_generator_steps=1",
                "--model.generator.init_args.dim=8", "--model.critic.init_args.dim=8", "--quality=null",
                "--best=null", "--trainer.limit_val_batches=1", "--trainer.enable_progress_bar=false",
                f"--trainer.logger.init_args.save_dir={tmp_path}"])  # fmt: skip
    (ckpt,) = tmp_path.glob("*/version_0/checkpoints/last.ckpt")
    with pytest.raises(ValueError, match=r"is a language model \(TextDataModule\).*python -m src.generate"):
        evaluate_main(["--ckpt", str(ckpt)])


@pytest.mark.parametrize("value", ["0", "-3"])
def test_generate_refuses_a_batch_size_below_one(value: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        generate_main(["--ckpt", "any.ckpt", "--batch-size", value])
    assert f"--batch-size must be >= 1 (samples per forward pass), got {value}" in capsys.readouterr().err


def test_a_directory_given_as_a_checkpoint_is_named_with_the_checkpoints_in_it(tmp_path: Path) -> None:
    run = tmp_path / "version_0"
    (run / "checkpoints").mkdir(parents=True)
    torch.save({}, run / "checkpoints" / "last.ckpt")
    for call in (
        lambda: load_checkpoint(run),
        lambda: generate_main(["--ckpt", str(run)]),
        lambda: evaluate_main(["--ckpt", str(run)]),
        lambda: build_cli([*TOY, f"--trainer.logger.init_args.save_dir={tmp_path}", "--ckpt_path", str(run)]),
    ):
        with pytest.raises(
            IsADirectoryError, match=rf"{run} is a directory, not a checkpoint file; pass one of .*last\.ckpt"
        ):
            call()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(IsADirectoryError, match="holds no \\*.ckpt file"):
        load_checkpoint(empty)


def test_a_global_batch_that_does_not_split_across_devices_fails_before_any_process_starts(
    tmp_path: Path,
) -> None:
    args = [*TOY, f"--trainer.logger.init_args.save_dir={tmp_path}", "--trainer.accelerator=cpu"]
    with pytest.raises(ValueError, match=r"data.global_batch_size=33 does not split evenly across 2 devices"):
        build_cli([*args, "--trainer.devices=2", "--data.global_batch_size=33"])
    assert not tmp_path.joinpath("toy").exists()


# ---------------------------------------------------------------------------------- item 9: resources
PEAK_MEMORY = """
import resource, runpy, sys
sys.argv = ["src.generate", *sys.argv[1:]]
runpy.run_module("src.generate", run_name="__main__")
print("PEAK_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _peak_kb(ckpt: Path, out: Path, n: int) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", PEAK_MEMORY, "--ckpt", str(ckpt), "--n", str(n), "--batch-size", "500",
         "--save-raw", "npz", "--out", str(out), "--device", "cpu"],
        cwd=REPO_ROOT, env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return int(proc.stdout.rsplit("PEAK_KB", 1)[1].split()[0])


@pytest.mark.slow
def test_generate_streams_many_samples_to_disk(tmp_path: Path) -> None:
    train_main(["--config", "configs/digits_uncond.yaml", "--model.max_generator_steps=1", "--quality=null", "--best=null", "--trainer.limit_val_batches=1",
                "--model.generator.init_args.dim=8", "--model.critic.init_args.dim=8",
                "--trainer.enable_progress_bar=false", f"--trainer.logger.init_args.save_dir={tmp_path}"])  # fmt: skip
    ckpt = tmp_path / "digits_uncond" / "version_0" / "checkpoints" / "last.ckpt"
    small = _peak_kb(ckpt, tmp_path / "small", 500)
    large = _peak_kb(ckpt, tmp_path / "large", 60_000)  # 60,000 x 16 x 16 floats: 61 MB, twice over in a cat
    raw = np.load(tmp_path / "large" / "samples.npz")
    assert raw["samples"].shape == (60_000, 1, 16, 16) and np.abs(raw["samples"]).max() <= 1
    assert (
        np.isfinite(raw["samples"][-500:]).all() and raw["samples"][-1].std() > 0
    )  # the last batch was written
    assert (large - small) / 1024 < 30, (
        f"peak memory grew by {(large - small) / 1024:.0f} MB for 59,500 more samples"
    )
    assert Image.open(tmp_path / "large" / "samples.png").size == (
        32 * 18 + 2,
        32 * 18 + 2,
    )  # GRID_MAX samples


def test_raw_samples_as_pt_are_written_batch_by_batch(tmp_path: Path) -> None:
    from src.utils.array_stream import RawSampleWriter

    samples, labels = torch.randn(10, 1, 4, 4), torch.arange(10)
    for suffix in (".pt", ".npz"):
        writer = RawSampleWriter(tmp_path / f"s{suffix}", 10, (1, 4, 4), labels)
        for batch in samples.split(3):
            writer.write(batch)
        assert not (tmp_path / f"s{suffix}").exists()  # only when complete
        writer.close()
    saved = torch.load(tmp_path / "s.pt", weights_only=True)
    assert torch.equal(saved["samples"], samples) and torch.equal(saved["labels"], labels)
    npz = np.load(tmp_path / "s.npz")
    assert np.array_equal(npz["samples"], samples.numpy()) and npz["labels"].tolist() == list(range(10))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.npz", "s.pt"]


def test_images_above_the_stated_size_are_refused_unless_allowed(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("RGB", (16, 16)).save(folder / "small.png")
    Image.new("RGB", (300, 200)).save(folder / "huge.png")
    options = {"data_dir": str(folder), "image_size": 8, "batch_size": 1, "val_fraction": 0.0}
    with pytest.raises(
        ImageTooLargeError,
        match=r"huge\.png \(300 x 200 = 0 megapixels, above data\.max_image_pixels=50000\).*--data\.max_image_pixels",
    ):
        ImageFolderDataModule(**options, max_image_pixels=50_000).setup("fit")
    allowed = ImageFolderDataModule(**options, max_image_pixels=None)
    allowed.setup("fit")
    assert len(allowed.datasets["train"]) == 2
    unchecked = ImageFolderDataModule(**options, max_image_pixels=50_000, verify=False)
    unchecked.setup("fit")
    with pytest.warns(UserWarning, match=r"Skipped unreadable image .*huge\.png .*max_image_pixels"):
        shapes = {tuple(unchecked.datasets["train"][i][0].shape) for i in range(2)}
    assert shapes == {(3, 8, 8)}
    assert json.dumps(ImageFolderDataModule(**options).max_image_pixels) == "50000000"  # the stated default
