"""Read the records of an offline W&B run file (``run-<id>.wandb``) back, for tests.

wandb 0.31 has no public Python reader: the ``wandb.sdk.internal.datastore`` module that older releases used
is gone (the Go core writes the file), and the ``LocalApi`` reader is not released yet. The format is
LevelDB's log format (https://github.com/google/leveldb/blob/main/doc/log_format.md) behind a 7-byte header
(``:W&B``, magic 0xBEE1, version 0); each record is a serialized ``wandb.proto.wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
BLOCK = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _chunks(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, payload) of every physical record; the file header counts against the first block."""
    pos = len(HEADER)
    while pos + 7 <= len(data):
        room = BLOCK - pos % BLOCK
        if room < 7:  # a block trailer of zeros
            pos += room
            continue
        checksum, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:  # zero padding at the end of a block
            pos += room
            continue
        payload = data[pos + 7 : pos + 7 + length]
        if zlib.crc32(payload, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF != checksum:
            raise ValueError(f"bad checksum at byte {pos}")
        yield kind, payload
        pos += 7 + length


def records(path: str | Path) -> list[wandb_internal_pb2.Record]:
    """Every record of a ``.wandb`` file, in order."""
    data = Path(path).read_bytes()
    if not data.startswith(HEADER):
        raise ValueError(f"{path} is not a W&B run file")
    out, pending = [], b""
    for kind, payload in _chunks(data):
        if kind == FULL:
            pending = payload
        elif kind == FIRST:
            pending = payload
            continue
        elif kind == MIDDLE:
            pending += payload
            continue
        else:  # LAST
            pending += payload
        record = wandb_internal_pb2.Record()
        record.ParseFromString(pending)
        out.append(record)
        pending = b""
    return out


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


def history(path: str | Path) -> list[dict[str, Any]]:
    """The logged rows: ``{key: value}`` per ``run.log`` call."""
    return [
        {_key(item): json.loads(item.value_json) for item in rec.history.item}
        for rec in records(path)
        if rec.WhichOneof("record_type") == "history"
    ]


def config(path: str | Path) -> dict[str, Any]:
    """The run's config, merged over all config records."""
    merged: dict[str, Any] = {}
    for rec in records(path):
        if rec.WhichOneof("record_type") == "config":
            for item in rec.config.update:
                merged[_key(item)] = json.loads(item.value_json)
    return merged
