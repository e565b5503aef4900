"""Small fake datasets written in the real on-disk formats that torchvision reads (for tests and benchmarks).

- :func:`write_mnist`: ``MNIST/raw/*-ubyte`` idx files (uncompressed, as torchvision 0.29 reads them);
- :func:`write_cifar10`: ``cifar-10-batches-py/`` pickled batches and ``batches.meta``;
- :func:`write_celeba`: ``celeba/img_align_celeba/*.jpg`` (178x218) and the five text files;
- :func:`write_image_folder`: a nested folder of PNG/JPEG files, optionally with class subfolders and a
  corrupt file.

torchvision checks the md5 of the CIFAR-10 and CelebA files; :func:`skip_md5` patches only that check.
"""

from __future__ import annotations

import os
import pickle
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
    "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()
LANDMARKS = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y"


def _idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array in the idx format: magic (0, 0, 0x08, ndim), big-endian int32 dims, data."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(
    root: str | Path, n_train: int = 100, n_test: int = 20, seed: int = 0
) -> dict[str, np.ndarray]:
    """Write ``root/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` with random 28x28 digits.

    Returns:
        The arrays written: ``train_images`` (N, 28, 28) uint8, ``train_labels`` (N,), ``test_*`` likewise.
    """
    rng = np.random.default_rng(seed)
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        _idx(raw / f"{prefix}-images-idx3-ubyte", images)
        _idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
    return arrays


def write_cifar10(
    root: str | Path, n_per_batch: int = 10, n_test: int = 20, seed: int = 0
) -> dict[str, np.ndarray]:
    """Write ``root/cifar-10-batches-py/`` (``data_batch_1..5``, ``test_batch``, ``batches.meta``).

    Each batch is a pickled dict with ``data`` (n, 3072) uint8 in CHW order, ``labels``, ``filenames`` and
    ``batch_label``, as in the real archive.

    Returns:
        ``train_images`` (5 * n_per_batch, 32, 32, 3) uint8 (HWC), ``train_labels``, ``test_*`` likewise.
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    train_images, train_labels = [], []
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(names):
        n = n_test if name == "test_batch" else n_per_batch
        data = rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)
        labels = [int(x) for x in (np.arange(n) + i) % 10]
        entry = {
            "batch_label": name.replace("_", " "),
            "labels": labels,
            "data": data,
            "filenames": [f"{name}_{j}.png" for j in range(n)],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f, protocol=2)
        hwc = data.reshape(n, 3, 32, 32).transpose(0, 2, 3, 1)
        if name == "test_batch":
            test_images, test_labels = hwc, np.array(labels)
        else:
            train_images.append(hwc)
            train_labels += labels
    meta = {"label_names": CIFAR10_CLASSES, "num_cases_per_batch": n_per_batch, "num_vis": 3072}
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return {
        "train_images": np.concatenate(train_images),
        "train_labels": np.array(train_labels),
        "test_images": test_images,
        "test_labels": test_labels,
    }


def write_celeba(
    root: str | Path, partition: Sequence[int] = (12, 4, 4), seed: int = 0, text_files: bool = True
) -> Path:
    """Write ``root/celeba/img_align_celeba/NNNNNN.jpg`` (178x218 RGB) and torchvision's five text files.

    Args:
        root: The ``data_dir``.
        partition: Number of train, valid and test images (in that order, as the official partition).
        seed: Seed of the pixels and attributes.
        text_files: Write the text files (``False``: only the JPEG folder).

    Returns:
        The ``celeba`` folder. Attribute ``Male`` is 1 for odd image numbers.
    """
    rng = np.random.default_rng(seed)
    base = Path(root) / "celeba"
    images = base / "img_align_celeba"
    images.mkdir(parents=True, exist_ok=True)
    n = sum(partition)
    names = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    for name in names:
        pixels = rng.integers(0, 256, size=(218, 178, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / name, quality=95)
    if not text_files:
        return base
    split_of = [s for s, count in enumerate(partition) for _ in range(count)]
    male = CELEBA_ATTRIBUTES.index("Male")
    rows = {
        "list_eval_partition.txt": [f"{name} {s}" for name, s in zip(names, split_of)],
        "identity_CelebA.txt": [f"{name} {1 + i % 7}" for i, name in enumerate(names)],
    }
    attrs = rng.choice([-1, 1], size=(n, len(CELEBA_ATTRIBUTES)))
    attrs[:, male] = [1 if (i + 1) % 2 else -1 for i in range(n)]
    attr_lines = [f"{name} " + " ".join(f"{a:2d}" for a in row) for name, row in zip(names, attrs)]
    bbox_lines = [f"{name}    95  71 226 313" for name in names]
    landmark_lines = [f"{name} 69  109  106  113   77  142   73  152  108  154" for name in names]
    for filename, lines in rows.items():
        (base / filename).write_text("\n".join(lines) + "\n")
    with_header = {
        "list_attr_celeba.txt": (" ".join(CELEBA_ATTRIBUTES), attr_lines),
        "list_bbox_celeba.txt": ("image_id x_1 y_1 width height", bbox_lines),
        "list_landmarks_align_celeba.txt": (LANDMARKS, landmark_lines),
    }
    for filename, (header, lines) in with_header.items():
        (base / filename).write_text(f"{n}\n{header}\n" + "\n".join(lines) + "\n")
    return base


def write_image_folder(
    root: str | Path,
    n: int = 20,
    classes: Sequence[str] | None = None,
    corrupt: int = 1,
    truncated: int = 0,
    seed: int = 0,
) -> dict[str, list[Path]]:
    """Write images of assorted sizes and formats (PNG, JPEG, nested subfolders) and some broken files.

    Args:
        root: The folder.
        n: Number of valid images (spread over ``classes`` when given).
        classes: Class subfolder names; ``None`` spreads the images over ``a/``, ``a/b/`` and ``root``.
        corrupt: Files of random bytes with an image extension (PIL cannot identify them).
        truncated: JPEG files cut short (they pass ``Image.verify()`` but fail to decode).
        seed: Seed of the pixels.

    Returns:
        ``{"good": [...], "corrupt": [...], "truncated": [...]}`` paths.
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    folders = [root / c for c in classes] if classes else [root, root / "a", root / "a" / "b"]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    good = []
    for i in range(n):
        height, width = int(rng.integers(40, 90)), int(rng.integers(40, 90))
        pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        path = folders[i % len(folders)] / f"img_{i:03d}.{'png' if i % 2 else 'jpg'}"
        Image.fromarray(pixels).save(path)
        good.append(path)
    bad = []
    for i in range(corrupt):
        path = folders[0] / f"corrupt_{i}.jpg"
        path.write_bytes(os.urandom(256))
        bad.append(path)
    cut = []
    for i in range(truncated):
        path = folders[0] / f"truncated_{i}.jpg"
        pixels = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        cut.append(path)
    (root / "notes.txt").write_text("not an image")
    return {"good": good, "corrupt": bad, "truncated": cut}


def skip_md5(monkeypatch) -> None:  # noqa: ANN001 (pytest's MonkeyPatch)
    """Make torchvision's CIFAR-10 and CelebA integrity checks test only that the files exist (not their md5)."""
    import torchvision.datasets.celeba as celeba
    import torchvision.datasets.cifar as cifar

    def exists(fpath: str, md5: str | None = None) -> bool:
        return os.path.isfile(fpath)

    monkeypatch.setattr(cifar, "check_integrity", exists)
    monkeypatch.setattr(celeba, "check_integrity", exists)
