"""Raw samples written to ``.npz`` or ``.pt`` batch by batch, so that no more than one batch is held in memory."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch
from numpy.lib import format as npy
from torch import Tensor

from src.utils.atomic_io import atomic_path


class RawSampleWriter:
    """Writes ``n`` samples (n, *shape) float32, and optionally their labels (n,), to ``path`` batch by batch.

    - ``.npz``: a compressed archive as ``np.savez_compressed`` writes it (``samples``, ``labels``): the
      ``samples.npy`` entry is streamed into the zip file (ZIP64, so beyond 4 GiB);
    - ``.pt``: ``{"samples": tensor, "labels": tensor}`` as ``torch.save`` writes it: the batches go into a
      memory-mapped ``.npy`` file next to it first (pages the OS can drop), which ``torch.save`` then copies.

    The file appears only when complete (a temporary file, then a rename): :meth:`close` it, or :meth:`abort`.

    Args:
        path: The output file; its suffix (``.npz`` or ``.pt``) chooses the format.
        n: How many samples will be written.
        shape: The shape of one sample.
        labels: The labels of all samples (small: ``n`` integers), stored beside them; ``None``: none.
    """

    def __init__(self, path: Path, n: int, shape: tuple[int, ...], labels: Tensor | None = None) -> None:
        if path.suffix not in (".npz", ".pt"):
            raise ValueError(f"raw samples are written as .npz or .pt, got {path}")
        self.path, self.n, self.shape, self.labels = path, n, tuple(shape), labels
        self.written = 0
        self._atomic = atomic_path(path)
        self._temporary = self._atomic.__enter__()
        header = {
            "descr": npy.dtype_to_descr(np.dtype(np.float32)),
            "fortran_order": False,
            "shape": (n, *shape),
        }
        if path.suffix == ".npz":
            self._zip = zipfile.ZipFile(self._temporary, "w", zipfile.ZIP_DEFLATED, allowZip64=True)
            self._entry = self._zip.open("samples.npy", "w", force_zip64=True)
            npy.write_array_header_2_0(self._entry, header)
        else:
            self._buffer = self._temporary.with_suffix(".npy")
            self._memmap = npy.open_memmap(self._buffer, mode="w+", dtype=np.float32, shape=(n, *shape))

    def write(self, samples: Tensor) -> None:
        """Append a batch (b, *shape) of samples."""
        if tuple(samples.shape[1:]) != self.shape or self.written + len(samples) > self.n:
            raise ValueError(
                f"expected batches of shape (b, {self.shape}) adding up to {self.n} samples; got {tuple(samples.shape)} "
                f"after {self.written}"
            )
        array = np.ascontiguousarray(samples.detach().float().cpu().numpy())
        if self.path.suffix == ".npz":
            self._entry.write(array.tobytes())
        else:
            self._memmap[self.written : self.written + len(array)] = array
        self.written += len(array)

    def close(self) -> None:
        """Finish the file (it must hold all ``n`` samples) and move it into place."""
        if self.written != self.n:
            raise ValueError(f"{self.written} samples written, {self.n} announced")
        if self.path.suffix == ".npz":
            self._entry.close()
            if self.labels is not None:
                with self._zip.open("labels.npy", "w", force_zip64=True) as entry:
                    npy.write_array(entry, self.labels.cpu().numpy())
            self._zip.close()
        else:
            self._memmap.flush()
            raw = {"samples": torch.from_numpy(self._memmap)}
            if self.labels is not None:
                raw["labels"] = self.labels.cpu()
            torch.save(raw, self._temporary)
            del raw, self._memmap
            self._buffer.unlink(missing_ok=True)
        self._atomic.__exit__(None, None, None)

    def abort(self) -> None:
        """Drop the partial file."""
        if self.path.suffix == ".npz":
            self._entry.close()
            self._zip.close()
        else:
            del self._memmap
            self._buffer.unlink(missing_ok=True)
        self._atomic.__exit__(RuntimeError, RuntimeError("aborted"), None)
