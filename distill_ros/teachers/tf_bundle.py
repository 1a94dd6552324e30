"""Read a TensorFlow 1 checkpoint (a tensor bundle) without TensorFlow.

A bundle is `<prefix>.index` plus `<prefix>.data-SSSSS-of-NNNNN` shards. The index is a
LevelDB-format table (an SSTable: data blocks, an index block, a 48-byte footer) that maps each
tensor name to a serialised `BundleEntryProto` (dtype, shape, shard, offset, size); the shards
hold the raw little-endian tensor bytes. References: LevelDB's `doc/table_format.md` and
TensorFlow's `tensorflow/core/protobuf/tensor_bundle.proto`. Sizes are checked against shapes;
checksums are not (a pure-Python crc32c over a 6 MB shard would take seconds).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TABLE_MAGIC = 0xDB4775248B80FB57  # LevelDB's kTableMagicNumber
FOOTER_SIZE = 48  # two padded block handles (40 bytes) + 8-byte magic
BLOCK_TRAILER_SIZE = 5  # 1-byte compression type + 4-byte masked crc32c
# TensorFlow DataType enum values -> numpy dtypes (little endian, as bundles store them).
DTYPES = {1: np.dtype("<f4"), 2: np.dtype("<f8"), 3: np.dtype("<i4"), 4: np.dtype("u1"),
          6: np.dtype("i1"), 9: np.dtype("<i8"), 10: np.dtype("?"), 19: np.dtype("<f2")}


class BundleFormatError(ValueError):
    """The file is not a tensor bundle this reader understands."""


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode one base-128 varint at `pos`; return (value, position after it)."""
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise BundleFormatError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise BundleFormatError("varint longer than 64 bits")


def proto_fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """Split a protobuf message into (field number, value) pairs, in wire order.

    Varints come back as int, length-delimited fields as bytes, fixed32/64 as int.
    """
    fields, pos = [], 0
    while pos < len(buf):
        tag, pos = read_varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire == 2:
            length, pos = read_varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            value = int.from_bytes(buf[pos:pos + width], "little")
            pos += width
        else:
            raise BundleFormatError(f"unsupported protobuf wire type {wire} (field {number})")
        fields.append((number, value))
    if pos != len(buf):
        raise BundleFormatError("protobuf message runs past its end")
    return fields


@dataclass(frozen=True)
class BundleEntry:
    """Where one tensor lives: `BundleEntryProto`'s dtype, shape, shard_id, offset, size."""

    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None


def _parse_shape(buf: bytes) -> tuple[int, ...]:
    """TensorShapeProto: repeated Dim dim = 2 (Dim: int64 size = 1, string name = 2)."""
    dims = []
    for number, value in proto_fields(buf):
        if number == 2:
            size = dict(proto_fields(value)).get(1, 0)
            dims.append(size - (1 << 64) if size >= 1 << 63 else size)  # int64 two's complement
        elif number == 3 and value:
            raise BundleFormatError("tensor of unknown rank")
    return tuple(dims)


def parse_entry(buf: bytes) -> BundleEntry:
    """Decode a serialised BundleEntryProto (fields 1-6; slices, field 7, are refused)."""
    kw = {"dtype": 0, "shape": (), "shard_id": 0, "offset": 0, "size": 0, "crc32c": None}
    for number, value in proto_fields(buf):
        if number == 1:
            kw["dtype"] = value
        elif number == 2:
            kw["shape"] = _parse_shape(value)
        elif number in (3, 4, 5):
            kw[("shard_id", "offset", "size")[number - 3]] = value
        elif number == 6:
            kw["crc32c"] = value
        elif number == 7:
            raise BundleFormatError("partitioned (sliced) tensors are not supported")
    return BundleEntry(**kw)


def _block_handle(buf: bytes, pos: int) -> tuple[int, int, int]:
    """A LevelDB BlockHandle: (offset, size, position after it)."""
    offset, pos = read_varint(buf, pos)
    size, pos = read_varint(buf, pos)
    return offset, size, pos


def read_block(table: bytes, offset: int, size: int) -> list[tuple[bytes, bytes]]:
    """Decode one table block into its (key, value) entries.

    Each entry is varint shared, varint non_shared, varint value_length, the key's unshared
    suffix and the value; a key shares its first `shared` bytes with the previous key (reset to
    0 at every restart point). The block ends with uint32 restart offsets and their count.
    """
    if offset + size + BLOCK_TRAILER_SIZE > len(table):
        raise BundleFormatError(f"block at {offset} (+{size}) runs past the end of the table")
    if table[offset + size] != 0:
        raise BundleFormatError("compressed table blocks are not supported (TF bundles are raw)")
    block = table[offset:offset + size]
    if len(block) < 4:
        raise BundleFormatError("block too short for its restart count")
    num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 * (num_restarts + 1)
    if end < 0:
        raise BundleFormatError("block restart array larger than the block")
    restarts = set(struct.unpack_from(f"<{num_restarts}I", block, end))
    entries, pos, key = [], 0, b""
    while pos < end:
        start = pos
        shared, pos = read_varint(block, pos)
        non_shared, pos = read_varint(block, pos)
        value_len, pos = read_varint(block, pos)
        if start in restarts and shared:
            raise BundleFormatError(f"entry at restart point {start} shares a key prefix")
        if shared > len(key):
            raise BundleFormatError("entry shares more bytes than the previous key has")
        key = key[:shared] + block[pos:pos + non_shared]
        pos += non_shared
        entries.append((key, block[pos:pos + value_len]))
        pos += value_len
    return entries


def read_table(path: Path) -> dict[str, bytes]:
    """Every (key, value) of a LevelDB-format table file, keys decoded as UTF-8."""
    table = path.read_bytes()
    if len(table) < FOOTER_SIZE:
        raise BundleFormatError(f"{path} is too short to be a table ({len(table)} bytes)")
    footer = table[-FOOTER_SIZE:]
    if struct.unpack("<Q", footer[-8:])[0] != TABLE_MAGIC:
        raise BundleFormatError(f"{path} does not end with LevelDB's table magic number")
    _, _, pos = _block_handle(footer, 0)  # the metaindex block: unused by bundles
    index_offset, index_size, _ = _block_handle(footer, pos)
    out = {}
    for _, handle in read_block(table, index_offset, index_size):
        offset, size, _ = _block_handle(handle, 0)
        for key, value in read_block(table, offset, size):
            out[key.decode("utf-8")] = value
    return out


class TensorBundle:
    """A TF1 checkpoint, opened by its prefix (`model.ckpt` for `model.ckpt.index`)."""

    def __init__(self, prefix: str | Path) -> None:
        prefix = Path(prefix)
        index = prefix.with_name(prefix.name + ".index")
        if not index.is_file():
            raise FileNotFoundError(f"checkpoint index {index} does not exist; pass the prefix "
                                    "of a TF1 checkpoint (the path without .index)")
        self.prefix = prefix
        table = read_table(index)
        header = dict(proto_fields(table.pop("", b"")))
        self.num_shards = header.get(1, 1)
        if header.get(2, 0) != 0:
            raise BundleFormatError(f"{index}: big-endian bundles are not supported")
        self.entries = {name: parse_entry(value) for name, value in table.items()}

    def names(self) -> list[str]:
        """The tensor names, sorted (the table's own order)."""
        return sorted(self.entries)

    def shard_path(self, shard_id: int) -> Path:
        """The data file holding shard `shard_id`."""
        name = f"{self.prefix.name}.data-{shard_id:05d}-of-{self.num_shards:05d}"
        return self.prefix.with_name(name)

    def read(self, name: str) -> np.ndarray:
        """One tensor as a numpy array of its stored dtype and shape."""
        if name not in self.entries:
            raise KeyError(f"tensor {name!r} is not in {self.prefix}; it holds "
                           f"{', '.join(self.names())}")
        entry = self.entries[name]
        if entry.dtype not in DTYPES:
            raise BundleFormatError(f"tensor {name!r} has unsupported dtype enum {entry.dtype}")
        dtype = DTYPES[entry.dtype]
        count = int(np.prod(entry.shape, dtype=np.int64))
        if count * dtype.itemsize != entry.size:
            raise BundleFormatError(f"tensor {name!r}: shape {entry.shape} needs "
                                    f"{count * dtype.itemsize} bytes, the entry says {entry.size}")
        with open(self.shard_path(entry.shard_id), "rb") as f:
            f.seek(entry.offset)
            raw = f.read(entry.size)
        if len(raw) != entry.size:
            raise BundleFormatError(f"tensor {name!r} runs past the end of its data file")
        return np.frombuffer(raw, dtype=dtype).reshape(entry.shape).copy()
