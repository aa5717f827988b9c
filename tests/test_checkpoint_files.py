"""Checkpoint files: a killed save's temporaries are removed by the next save of the same
target (a running save's are kept); a directory, a bfloat16 entry and an unknown dtype get
clear answers. Expected values from numpy."""
import json
import os
import signal
import struct
import subprocess
import sys

import numpy as np
import pytest

from graphspore import Tensor, load_checkpoint, save_checkpoint
from graphspore.checkpoint import CheckpointError


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_killed_save_leaves_no_temporary_behind_after_the_next_save(tmp_path):
    target = tmp_path / "net.ckpt"
    script = (f"import os, numpy as np\n"
              f"import graphspore.checkpoint as c\n"
              f"real = os.replace\n"
              f"def hang(*a):\n    print('written', flush=True)\n    import time; time.sleep(60)\n"
              f"c.os.replace = hang\n"
              f"c.save_checkpoint({{'w': np.ones(1000, np.float32)}}, {str(target)!r})\n")
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "written"
    leftovers = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert len(leftovers) == 1 and leftovers[0].startswith(f"net.ckpt.{child.pid}.")
    child.send_signal(signal.SIGKILL)
    child.wait()
    running = tmp_path / f"net.ckpt.{os.getppid()}.inflight.tmp"   # a live process's save
    running.write_bytes(b"partial")
    other = tmp_path / f"other.ckpt.{_dead_pid()}.x.tmp"          # another target's: kept
    other.write_bytes(b"partial")
    save_checkpoint({"w": np.arange(3, dtype=np.float32)}, str(target))
    names = sorted(os.listdir(tmp_path))
    assert names == sorted(["net.ckpt", running.name, other.name]), names
    np.testing.assert_array_equal(load_checkpoint(str(target))["w"].asnumpy(), [0, 1, 2])


def test_a_directory_is_named_as_such(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory"):
        load_checkpoint(str(tmp_path))


def _safetensors(entries):
    """A safetensors file from (name, dtype code, shape, raw bytes)."""
    header, blobs, offset = {}, [], 0
    for name, code, shape, raw in entries:
        header[name] = {"dtype": code, "shape": list(shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def test_bfloat16_entries_of_other_tools_load_as_bfloat16(tmp_path):
    import ml_dtypes
    values = np.array([1.0, -2.5, 3.140625, 1e-3], np.float32)
    bf16 = (values.view(np.uint32) >> 16).astype("<u2")
    widened = (bf16.astype(np.uint32) << 16).view(np.float32)
    other = np.arange(6, dtype=np.int32).reshape(2, 3)
    path = tmp_path / "bf16.safetensors"
    path.write_bytes(_safetensors([("w", "BF16", (4,), bf16.tobytes()),
                                   ("step", "I32", (2, 3), other.tobytes())]))
    loaded = load_checkpoint(str(path))
    assert loaded["w"].asnumpy().dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(loaded["w"].asnumpy().astype(np.float32), widened)
    np.testing.assert_array_equal(loaded["step"].asnumpy(), other)


def test_an_unknown_dtype_is_named(tmp_path):
    path = tmp_path / "f8.safetensors"
    path.write_bytes(_safetensors([("w", "F8_E4M3", (2,), b"\x00\x01")]))
    with pytest.raises(CheckpointError, match="dtype 'F8_E4M3'"):
        load_checkpoint(str(path))
