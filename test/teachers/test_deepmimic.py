"""DeepMimic checkpoints read without TensorFlow: the table format, the tensors, the actor."""

import struct

import numpy as np
import pytest

from distill_ros.tasks.humanoid.pybullet_reference import load_reference_module
from distill_ros.teachers.deepmimic import CLIPS, DeepMimicTeacher, checkpoint_prefix
from distill_ros.teachers.tf_bundle import (TABLE_MAGIC, BundleFormatError, TensorBundle,
                                            parse_entry, proto_fields, read_table, read_varint)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _block(items: list[tuple[bytes, bytes]], restart_every: int) -> bytes:
    """A LevelDB block as leveldb's BlockBuilder writes it: shared prefixes, restarts."""
    out, restarts, prev = bytearray(), [], b""
    for i, (key, value) in enumerate(items):
        shared = 0
        if i % restart_every == 0:
            restarts.append(len(out))
        else:
            while shared < min(len(prev), len(key)) and prev[shared] == key[shared]:
                shared += 1
        out += _varint(shared) + _varint(len(key) - shared) + _varint(len(value))
        out += key[shared:] + value
        prev = key
    out += struct.pack(f"<{len(restarts)}I", *restarts) + struct.pack("<I", len(restarts))
    return bytes(out)


def _table(blocks: list[list[tuple[bytes, bytes]]], restart_every: int = 2) -> bytes:
    """A whole table: data blocks, an index block, an empty metaindex block, the footer."""
    data, index = bytearray(), []
    for items in blocks:
        body = _block(items, restart_every)
        index.append((items[-1][0], _varint(len(data)) + _varint(len(body))))
        data += body + b"\0\0\0\0\0"  # type 0 (raw), crc not checked by the reader
    meta = _block([], 1)
    meta_handle = _varint(len(data)) + _varint(len(meta))
    data += meta + b"\0" * 5
    idx = _block(index, 1)
    handles = meta_handle + _varint(len(data)) + _varint(len(idx))
    data += idx + b"\0" * 5
    return bytes(data) + handles.ljust(40, b"\0") + struct.pack("<Q", TABLE_MAGIC)


def test_varint_and_protobuf_fields_decode():
    assert read_varint(b"\xac\x02", 0) == (300, 2)
    assert read_varint(_varint(2**40 + 5), 0) == (2**40 + 5, 6)
    msg = b"\x08\x01" + b"\x12\x03abc" + b"\x35\x01\x00\x00\x00"
    assert proto_fields(msg) == [(1, 1), (2, b"abc"), (6, 1)]
    with pytest.raises(BundleFormatError, match="wire type"):
        proto_fields(b"\x0b")  # wire type 3 (groups)


def test_bundle_entry_proto_is_decoded():
    dim = lambda n: b"\x12" + _varint(len(_varint(n)) + 1) + b"\x08" + _varint(n)  # noqa: E731
    shape = dim(197) + dim(1024)
    entry = (b"\x08\x01" + b"\x12" + _varint(len(shape)) + shape + b"\x18\x00"
             + b"\x20" + _varint(4096) + b"\x28" + _varint(806912) + b"\x35\x01\x02\x03\x04")
    e = parse_entry(entry)
    assert (e.dtype, e.shape, e.shard_id, e.offset, e.size) == (1, (197, 1024), 0, 4096, 806912)
    assert e.crc32c == 0x04030201


def test_table_reader_handles_prefix_compression_restarts_and_many_blocks(tmp_path):
    keys = [f"agent/main/actor/{i}/dense/{s}".encode() for i in range(5) for s in ("b", "k")]
    items = [(k, f"value-{n}".encode()) for n, k in enumerate(sorted(keys))]
    path = tmp_path / "t.index"
    path.write_bytes(_table([items[:3], items[3:7], items[7:]], restart_every=3))
    assert read_table(path) == {k.decode(): v for k, v in items}
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    with pytest.raises(BundleFormatError, match="magic"):
        read_table(path)


@pytest.mark.parametrize("clip", CLIPS)
def test_shipped_checkpoint_has_the_actor_with_known_shapes(clip):
    bundle = TensorBundle(checkpoint_prefix(clip))
    shapes = {name: bundle.entries[name].shape for name in bundle.names()}
    actor = "agent/main/actor"
    assert shapes[f"{actor}/0/dense/kernel"] == (197, 1024)
    assert shapes[f"{actor}/0/dense/bias"] == (1024,)
    assert shapes[f"{actor}/1/dense/kernel"] == (1024, 512)
    assert shapes[f"{actor}/1/dense/bias"] == (512,)
    assert shapes[f"{actor}/dense/kernel"] == (512, 36)
    assert shapes[f"{actor}/dense/bias"] == (36,)
    assert shapes["agent/main/critic/dense/kernel"] == (512, 1)
    assert shapes["agent/resource/s_norm/mean"] == (197,)
    assert shapes["agent/resource/a_norm/std"] == (36,)
    assert bundle.read("agent/resource/s_norm/count").dtype == np.int32
    assert np.isfinite(bundle.read(f"{actor}/1/dense/kernel")).all()


@pytest.mark.parametrize("clip", CLIPS)
def test_action_normaliser_equals_the_offsets_in_pybullets_source(clip):
    """An independent check of the bytes: a_norm was set from pybullet's action offset/scale."""
    env_cls = load_reference_module().PyBulletDeepMimicEnv
    env = object.__new__(env_cls)  # only its constant tables; no simulation
    bundle = TensorBundle(checkpoint_prefix(clip))
    np.testing.assert_allclose(bundle.read("agent/resource/a_norm/mean"),
                               -np.array(env.build_action_offset(0)), atol=1e-6)
    np.testing.assert_allclose(bundle.read("agent/resource/a_norm/std"),
                               1.0 / np.array(env.build_action_scale(0)), rtol=1e-6)
    s_mean, s_std = bundle.read("agent/resource/s_norm/mean"), bundle.read(
        "agent/resource/s_norm/std")
    assert (s_mean[0], s_std[0]) == (0.5, 0.5), "phase is normalised as (phase - 0.5) / 0.5"


def test_teacher_action_equals_the_layers_evaluated_by_hand():
    bundle = TensorBundle(checkpoint_prefix("walk"))
    t = DeepMimicTeacher.for_clip("walk")
    read = lambda n: bundle.read(n).astype(np.float64)  # noqa: E731
    rng = np.random.default_rng(0)
    states = read("agent/resource/s_norm/mean") + rng.normal(size=(3, 197)) * read(
        "agent/resource/s_norm/std")
    for s in states:
        x = (s - read("agent/resource/s_norm/mean")) / read("agent/resource/s_norm/std")
        for layer in ("0/dense", "1/dense"):  # float64 here, float32 in the teacher
            w, b = read(f"agent/main/actor/{layer}/kernel"), read(f"agent/main/actor/{layer}/bias")
            x = np.maximum(x @ w + b, 0.0)
        y = x @ read("agent/main/actor/dense/kernel") + read("agent/main/actor/dense/bias")
        expected = y * read("agent/resource/a_norm/std") + read("agent/resource/a_norm/mean")
        np.testing.assert_allclose(t.act(s), expected, rtol=1e-4, atol=1e-4)
    batch = t.act(states.astype(np.float32))
    assert batch.shape == (3, 36)
    np.testing.assert_allclose(batch[1], t.act(states[1]), atol=1e-5)
    large = t.act(np.repeat(states.astype(np.float32), 10, axis=0))  # the BLAS path
    np.testing.assert_allclose(large[::10], batch, atol=1e-4)


def test_bad_inputs_are_refused_with_the_fix(tmp_path):
    with pytest.raises(ValueError, match="walk, jump"):
        DeepMimicTeacher.for_clip("moonwalk")
    with pytest.raises(FileNotFoundError, match="prefix"):
        TensorBundle(tmp_path / "missing.ckpt")
    with pytest.raises(ValueError, match="197"):
        DeepMimicTeacher.for_clip("walk").act(np.zeros(196))
