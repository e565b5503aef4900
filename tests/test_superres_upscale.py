"""Tiled upscaling and ``python -m src.upscale``: seams, a trained checkpoint end to end, and bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.models.tiling import tile_spans, upscale_tiled
from src.nets import SRResNetGenerator
from src.upscale import load_sr_model
from tests.helpers import REPO_ROOT, run_cli

# A tiny super-resolution run through the CLI: 16 px HR crops, x2, three steps of WGAN-GP.
SR_TINY = [
    "--config",
    "configs/superres.yaml",
    "--model.generator.init_args.scale=2",
    "--model.generator.init_args.dim=8",
    "--model.generator.init_args.num_blocks=1",
    "--model.critic.init_args.dim=8",
    "--model.critic.init_args.num_downsamples=2",
    "--data.image_size=16",
    "--data.stride=64",
    "--data.batch_size=4",
    "--trainer.limit_train_batches=3",
    "--trainer.val_check_interval=1.0",
    "--trainer.enable_progress_bar=false",
    "--model.max_generator_steps=3",
]


@pytest.mark.parametrize(("length", "tile", "overlap"), [(5, 8, 2), (8, 8, 2), (37, 8, 2), (100, 16, 6)])
def test_tiles_cover_the_axis_and_keep_parts_that_partition_it(length: int, tile: int, overlap: int) -> None:
    spans = tile_spans(length, tile, overlap)
    kept = [i for _, _, a, b in spans for i in range(a, b)]
    assert kept == list(range(length))  # every pixel kept once, in order
    for start, end, keep_start, keep_end in spans:
        assert 0 <= start <= keep_start < keep_end <= end <= length and end - start == min(tile, length)
        if start > 0:
            assert keep_start - start >= overlap // 2  # context before the kept part
        if end < length:
            assert end - keep_end >= overlap // 2
    with pytest.raises(ValueError, match="0 <= --overlap < --tile"):
        tile_spans(10, 4, 4)


@torch.no_grad()
def test_tiled_output_equals_the_whole_image_when_the_margin_covers_the_receptive_field() -> None:
    torch.manual_seed(0)
    gen = SRResNetGenerator(
        (3, 8, 8), scale=4, dim=16, num_blocks=4
    ).eval()  # configs/superres.yaml's generator
    for p in gen.tail.parameters():  # the residual generator starts at bicubic; give it a real learned part
        torch.nn.init.normal_(p, std=0.05)
    lr = torch.rand(1, 3, 45, 70) * 2 - 1
    whole = gen(lr)
    # receptive field: 1 + 2 per block + 1 + 1 (upsampling) + tail, under 16 LR px: a 32 px overlap is exact
    torch.testing.assert_close(upscale_tiled(gen, lr, 4, tile=40, overlap=32), whole, atol=1e-5, rtol=0)
    # a margin smaller than the receptive field leaves seams, small but measurable
    seams = (upscale_tiled(gen, lr, 4, tile=20, overlap=4) - whole).abs().max()
    assert 1e-5 < seams < 0.5
    # an image smaller than a tile is upscaled whole
    small = lr[..., :9, :11]
    torch.testing.assert_close(upscale_tiled(gen, small, 4, tile=40, overlap=32), gen(small))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sr_run")
    run_cli([*SR_TINY, f"--trainer.logger.init_args.save_dir={root}"], timeout=300)
    run = root / "superres" / "version_0"
    assert (run / "superres").is_dir() and list((run / "superres").glob("val-gen_step=*.png"))
    header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"val/psnr", "val/psnr_bicubic", "val/ssim", "val/sharpness", "test/psnr"} <= set(header)
    return run / "checkpoints" / "last.ckpt"


def _upscale(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "src.upscale", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow  # a CLI training run (module fixture) and three upscale processes
def test_cli_upscales_an_image_and_a_folder_to_png(checkpoint: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    image = tmp_path / "in" / "photo.jpg"
    image.parent.mkdir()
    Image.fromarray((rng.random((23, 37, 3)) * 255).astype(np.uint8)).save(image)
    (tmp_path / "in" / "sub").mkdir()
    Image.fromarray((rng.random((9, 40)) * 255).astype(np.uint8)).convert("RGB").save(
        tmp_path / "in/sub/b.png"
    )
    out = tmp_path / "one.png"
    proc = _upscale(
        "--ckpt",
        str(checkpoint),
        "--input",
        str(image),
        "--output",
        str(out),
        "--tile",
        "16",
        "--overlap",
        "12",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = Image.open(out)
    assert (written.format, written.mode, written.size) == ("PNG", "RGB", (74, 46))
    # the CLI's tiled output is the model's whole-image output, rounded to 8 bits
    model = load_sr_model(checkpoint)
    lr = torch.from_numpy(np.asarray(Image.open(image), dtype=np.float32)).permute(2, 0, 1)[None] / 127.5 - 1
    expected = ((model.upscale(lr)[0] + 1) * 127.5).round().permute(1, 2, 0).numpy()
    assert np.abs(np.asarray(written, dtype=np.float32) - expected).max() <= 1
    proc = _upscale(
        "--ckpt", str(checkpoint), "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert Image.open(tmp_path / "out/photo_x2.png").size == (74, 46)
    assert Image.open(tmp_path / "out/sub/b_x2.png").size == (80, 18)


@pytest.mark.slow  # four upscale processes, each starting torch
def test_cli_refuses_bad_input_clearly(checkpoint: Path, tmp_path: Path) -> None:
    rgba = tmp_path / "alpha.png"
    Image.new("RGBA", (12, 12), (10, 20, 30, 128)).save(rgba)
    proc = _upscale("--ckpt", str(checkpoint), "--input", str(rgba), "--output", str(tmp_path / "x.png"))
    assert proc.returncode == 2
    assert "has 4 channel(s) (PIL mode RGBA) but the model was trained on 3 (RGB)" in proc.stderr
    assert "dropping its alpha channel" in proc.stderr
    empty = tmp_path / "empty"
    (empty / "nested").mkdir(parents=True)
    (empty / "notes.txt").write_text("no images here")
    proc = _upscale("--ckpt", str(checkpoint), "--input", str(empty), "--output", str(tmp_path / "o"))
    assert proc.returncode == 2 and f"--input {empty} contains no image files" in proc.stderr
    proc = _upscale(
        "--ckpt", str(checkpoint), "--input", str(rgba), "--output", "o", "--tile", "8", "--overlap", "8"
    )
    assert proc.returncode == 2 and "0 <= --overlap < --tile" in proc.stderr
    not_sr = tmp_path / "fake.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"generator": {}}}, not_sr)
    proc = _upscale("--ckpt", str(not_sr), "--input", str(rgba), "--output", "o")
    assert proc.returncode == 2 and "is not a super-resolution checkpoint" in proc.stderr


@pytest.mark.slow  # two CLI runs: about a minute on two cores
def test_celeba_sr_config_and_a_folder_of_images_train(tmp_path: Path) -> None:
    from tests.fakedata import write_celeba, write_image_folder

    write_celeba(tmp_path / "celeba_data", partition=(8, 4, 4), text_files=False)  # a plain folder of JPEGs
    write_image_folder(tmp_path / "images", n=12, corrupt=0)
    tiny = [
        "--model.generator.init_args.dim=8",
        "--model.generator.init_args.num_blocks=1",
        "--model.critic.init_args.dim=8",
        "--data.batch_size=4",
        "--model.max_generator_steps=1",
        "--trainer.val_check_interval=1.0",
        "--trainer.limit_train_batches=5",
        "--trainer.enable_progress_bar=false",
        f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}",
    ]
    run_cli(
        [
            "--config",
            "configs/celeba_sr.yaml",
            f"--data.data_dir={tmp_path / 'celeba_data'}",
            "--data.num_workers=0",
            *tiny,
        ],
        timeout=300,
    )
    folder = [
        "--config",
        "configs/superres.yaml",
        "--data=src.data.ImageFolderDataModule",
        f"--data.data_dir={tmp_path / 'images'}",
        "--data.image_size=32",
        "--data.val_fraction=0.25",
        "--data.test_fraction=0.25",
        "--model.generator.init_args.dim=8",
        "--model.generator.init_args.num_blocks=1",
        "--model.critic.init_args.dim=8",
        "--data.batch_size=2",
        "--model.max_generator_steps=1",
        "--trainer.val_check_interval=1.0",
        "--trainer.limit_train_batches=5",
        "--trainer.enable_progress_bar=false",
        f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}",
    ]
    run_cli(folder, timeout=300)
    for name in ("celeba_sr", "superres"):
        run = tmp_path / "runs" / name / "version_0"
        header = (run / "metrics.csv").read_text().splitlines()[0].split(",")
        assert {"test/psnr", "test/psnr_bicubic", "test/ssim", "test/sharpness"} <= set(header), name
        assert list((run / "superres").glob("test-gen_step=*.png")), name
