"""Object-cache entries are checked against their full key and against the host before LLVM
sees them: framed non-object bytes, a foreign-architecture object, two valid entries swapped
between file names, or an entry written for another llvmlite/graphspore/CPU are each deleted,
recompiled and rewritten, never loaded (LLVM would abort, segfault or compute the other
function). Risky loads run in a child process so that a regression fails instead of killing
the test run."""
import dataclasses
import os
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from graphspore.runtime import Executable, cache, compile_module, host
from graphspore.runtime.engine import entry_key, prepare_ir

from test_runtime import fma_module

SHAPE = (15,)
F32 = np.float32


def fms_module():
    """``y = a * b - c``: same signature as fma_module, another function."""
    return fma_module(15).replace("fadd", "fsub")


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    directory = tmp_path / "gs-cache"
    monkeypatch.setenv("GRAPHSPORE_CACHE_DIR", str(directory))
    cache.reset_stats()
    return directory


def key_of(text):
    return entry_key(prepare_ir(text, ["fma"]))


def run_in_child(source_expr, sign):
    """Compile `source_expr` (fma_module(15) or fms_module()) in a fresh process on the current
    cache directory; returns (exit code, output). Prints HIT/MISS and checks the result."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        import numpy as np
        from graphspore.runtime import Executable, compile_module
        from test_object_cache_keys import fma_module, fms_module
        module = compile_module({source_expr}, ["fma"])
        run = Executable(module, "fma", [((15,), np.float32)] * 3, [((15,), np.float32)], 0)
        a, b, c = [np.arange(15, dtype=np.float32) + k for k in range(3)]
        assert np.allclose(run(a, b, c)[0], a * b + {sign} * c)
        print("HIT" if module.cache_hit else "MISS")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ))
    return done.returncode, done.stdout + done.stderr


def check(module, sign):
    run = Executable(module, "fma", [(SHAPE, F32)] * 3, [(SHAPE, F32)], 0)
    a, b, c = [np.arange(15, dtype=F32) * (k + 1) for k in range(3)]
    np.testing.assert_allclose(run(a, b, c)[0], a * b + sign * c, rtol=1e-6)


def test_framed_garbage_is_recompiled_not_handed_to_llvm(cache_dir):
    key = key_of(fma_module(15))
    assert cache.store(key, os.urandom(4096))        # a whole, self-consistent frame
    code, output = run_in_child("fma_module(15)", +1)
    assert code == 0 and output.strip().endswith("MISS"), output
    module = compile_module(fma_module(15), ["fma"])   # the child rewrote a real entry
    assert module.cache_hit
    check(module, +1)


def test_a_foreign_architecture_object_is_recompiled(cache_dir):
    compile_module(fma_module(15), ["fma"])
    key = key_of(fma_module(15))
    real = cache.load(key)
    assert real[:4] == b"\x7fELF" and cache.object_matches_host(real, host().triple)
    foreign = bytearray(real)
    struct.pack_into("<H", foreign, 18, 183)          # e_machine: EM_AARCH64
    assert cache.store(key, bytes(foreign))
    code, output = run_in_child("fma_module(15)", +1)
    assert code == 0 and output.strip().endswith("MISS"), output
    assert cache.load(key) == real                     # rewritten with this host's object


def test_two_valid_entries_swapped_between_names_compute_their_own_function(cache_dir):
    compile_module(fma_module(15), ["fma"])
    compile_module(fms_module(), ["fma"])
    add_path, sub_path = (cache.entry_path(key_of(t)) for t in (fma_module(15), fms_module()))
    add_bytes, sub_bytes = open(add_path, "rb").read(), open(sub_path, "rb").read()
    with open(add_path, "wb") as handle:
        handle.write(sub_bytes)
    with open(sub_path, "wb") as handle:
        handle.write(add_bytes)
    cache.reset_stats()
    added, subtracted = compile_module(fma_module(15), ["fma"]), compile_module(fms_module(),
                                                                                ["fma"])
    assert not added.cache_hit and not subtracted.cache_hit
    assert cache.stats()["corrupt"] == 2
    check(added, +1)
    check(subtracted, -1)
    assert open(add_path, "rb").read() == add_bytes    # each rewritten under its own name


@pytest.mark.parametrize("field", ["llvmlite", "graphspore", "cpu", "features", "format"])
def test_an_entry_for_another_version_or_cpu_is_not_loaded(cache_dir, field):
    compile_module(fma_module(15), ["fma"])
    key = key_of(fma_module(15))
    payload = cache.load(key)
    other = dataclasses.replace(key, **{field: getattr(key, field) + "-other"})
    assert cache.store(other, payload)
    os.replace(cache.entry_path(other), cache.entry_path(key))   # planted under key's name
    assert cache.load(key) is None and cache.stats()["corrupt"] == 1
    assert not os.path.exists(cache.entry_path(key))


def test_object_header_check():
    triple = host().triple
    elf = bytearray(64)
    elf[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<HH", elf, 16, 1, 62)
    assert cache.object_matches_host(bytes(elf), "x86_64-unknown-linux-gnu")
    assert not cache.object_matches_host(bytes(elf), "aarch64-unknown-linux-gnu")
    struct.pack_into("<H", elf, 16, 3)                 # ET_DYN: not an object file
    assert not cache.object_matches_host(bytes(elf), "x86_64-unknown-linux-gnu")
    assert not cache.object_matches_host(b"\x00" * 64, triple)
    assert not cache.object_matches_host(b"\x7fELF", triple)
    assert not cache.object_matches_host(bytes(elf), "mips-unknown-linux-gnu")
