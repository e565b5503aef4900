"""When a resumed run may use another number of devices or nodes: when its global batch stays the same.

A cluster's allocation varies between requeues, so :func:`src.utils.resume.config_differences` lets the device
count, the node count and the DDP strategy they choose change on resuming, with ``data.global_batch_size`` set
(each rank's batch follows the device count) or with the same number of processes.
"""

from __future__ import annotations

import re
from typing import Any

TOPOLOGY = re.compile(r"trainer\.(devices|num_nodes|strategy)")
GLOBAL_BATCH = "data.init_args.global_batch_size"


def processes(flat: dict[str, Any]) -> int | None:
    """The number of processes a config asks for (devices × nodes); ``None`` when it depends on the machine."""
    devices, nodes = flat.get("trainer.devices", "auto"), int(flat.get("trainer.num_nodes") or 1)
    text = ",".join(map(str, devices)) + "," if isinstance(devices, list) else str(devices).strip()
    if not re.fullmatch(r"\d+(,\d*)*", text) or text == "0":
        return None
    return (int(text) if "," not in text else len([d for d in text.split(",") if d])) * nodes


def topology_may_change(old: dict[str, Any], new: dict[str, Any], keys: list[str]) -> bool:
    """Whether a change of the device count, node count or DDP strategy (``keys``) keeps the global batch.

    Args:
        old: The saved run config, flattened (``trainer.devices``, ``data.init_args.global_batch_size``, ...).
        new: This run's config, flattened alike.
        keys: The changed topology keys.
    """
    plain = ("auto", "ddp", "ddp_find_unused_parameters_true", "ddp_spawn")
    if any(k.endswith("strategy") and not {old.get(k), new.get(k)} <= set(plain) for k in keys):
        return False  # a configured strategy (FSDP, a class) is not a change of device count
    if new.get(GLOBAL_BATCH) is not None and old.get(GLOBAL_BATCH) == new.get(GLOBAL_BATCH):
        return True
    return processes(old) is not None and processes(old) == processes(new)
