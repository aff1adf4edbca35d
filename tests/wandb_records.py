"""Read an offline W&B run file (run-<id>.wandb) to check what sac-runner sent to W&B.

The file is W&B's record log: a 7-byte header (":W&B", magic, version), then 32 KiB blocks of
chunks, each with a 7-byte header (CRC32, little-endian length, type: 1 full, 2 first, 3 middle,
4 last); a record is a protobuf `Record` (wandb.proto.wandb_internal_pb2)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from wandb.proto import wandb_internal_pb2

HEADER, CHUNK_HEADER, BLOCK = 7, 7, 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> Iterator[wandb_internal_pb2.Record]:
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    pos, pending = HEADER, b""
    while pos + CHUNK_HEADER <= len(data):
        if BLOCK - pos % BLOCK < CHUNK_HEADER:  # the rest of a block too short for a chunk is padding
            pos += BLOCK - pos % BLOCK
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        chunk = data[pos + CHUNK_HEADER:pos + CHUNK_HEADER + length]
        pos += CHUNK_HEADER + length
        if kind == FULL:
            yield _parse(chunk)
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            yield _parse(pending + chunk)


def _parse(data: bytes) -> wandb_internal_pb2.Record:
    record = wandb_internal_pb2.Record()
    record.ParseFromString(data)
    return record


def run_record(path: Path) -> wandb_internal_pb2.RunRecord:
    """The run's own record: id, display name, group, job type, tags."""
    for record in records(path):
        if record.WhichOneof("record_type") == "run":
            return record.run
    raise AssertionError(f"{path} holds no run record")
