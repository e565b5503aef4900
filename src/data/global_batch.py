"""The batch each device draws: ``data.batch_size`` per device, or ``data.global_batch_size`` split across ranks.

With ``--trainer.devices=4`` and ``batch_size: 64`` the optimizer sees a global batch of 256. The paper's
recipes state a global batch (64 for CIFAR-10) at a learning rate tuned for it; ``global_batch_size: 64`` keeps
it whatever the device count (16 per device on 4 devices).
"""

from __future__ import annotations

from lightning.pytorch.utilities import rank_zero_info


def per_device_batch_size(batch_size: int, global_batch_size: int | None, world_size: int) -> int:
    """The batch of one device: ``global_batch_size / world_size`` when a global batch is set, else ``batch_size``.

    Args:
        batch_size: ``data.batch_size``, per device.
        global_batch_size: ``data.global_batch_size``, or ``None`` to use ``batch_size``.
        world_size: The number of processes (devices times nodes).

    Raises:
        ValueError: When the global batch is below 1 or does not split evenly across the devices.
    """
    if global_batch_size is None:
        return batch_size
    if global_batch_size < 1:
        raise ValueError(
            f"data.global_batch_size must be >= 1 or null, got global_batch_size={global_batch_size}"
        )
    if global_batch_size % world_size:
        raise ValueError(
            f"data.global_batch_size={global_batch_size} does not split evenly across {world_size} devices: "
            f"choose a multiple of {world_size}, or set data.batch_size (per device) and leave "
            "data.global_batch_size null"
        )
    return global_batch_size // world_size


def log_global_batch(name: str, batch_size: int, world_size: int) -> None:
    """Print (rank zero) the global training batch the run uses."""
    rank_zero_info(
        f"{name}: global batch {batch_size * world_size} ({batch_size} per device x {world_size} device(s))"
    )
