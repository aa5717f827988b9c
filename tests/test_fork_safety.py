"""Fork at any moment: a child forked while another thread of the parent is compiling (inside
the compile and LLVM locks) compiles and runs its own new function, with worker threads of its
own. The parent waits with a deadline, so a deadlock fails the test instead of hanging it."""
import os
import sys
import threading
import time

import numpy as np
import pytest

from graphspore import Tensor, jit
from graphspore import compiler
from graphspore.runtime import engine, thread_pool

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

DEADLINE_S = 60


def _scaled(k):
    """A new function (its IR differs by the constant), so every call is a real compile."""
    @jit
    def scaled(x):
        return (x * 1.0 + k) * 2.0 - x
    return scaled


def _wait(pid, deadline_s):
    """Exit status of child `pid`, or None after `deadline_s` (the child is then killed)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return None


def _child_compiles_and_runs():
    """Run in the forked child: compile something new, check it, exit 0 (never returns)."""
    code = 1
    try:
        x = np.arange(6, dtype=np.float32)
        got = _scaled(1234.5)(Tensor(x)).asnumpy()
        big = np.ones(1 << 20, np.float32)
        total = _scaled(0.25)(Tensor(big)).asnumpy()  # large enough to split over the pool
        ok = np.allclose(got, (x + 1234.5) * 2 - x) and np.allclose(total, 1.5)
        code = 0 if ok and len(thread_pool._state["workers"]) == \
            thread_pool.get_num_threads() - 1 else 3
    except BaseException as error:  # noqa: BLE001  (reported through the exit code)
        print("child failed:", repr(error), file=sys.stderr)
        code = 2
    finally:
        os._exit(code)


def _held_by_another_thread(lock):
    if lock.acquire(blocking=False):
        lock.release()
        return False
    return True


@pytest.mark.parametrize("lock_name", ["compile", "llvm"])
def test_fork_while_another_thread_compiles(lock_name, monkeypatch):
    monkeypatch.setenv("GRAPHSPORE_CACHE_DISABLE", "1")   # every compile runs LLVM
    lock = compiler._COMPILE_LOCK if lock_name == "compile" else engine.LLVM_LOCK
    stop = threading.Event()
    errors = []

    def compile_forever():
        k = 0
        try:
            while not stop.is_set():
                k += 1
                _scaled(float(k) + 0.5)(Tensor(np.ones(3, np.float32)))
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    worker = threading.Thread(target=compile_forever, daemon=True)
    worker.start()
    try:
        start = time.monotonic()
        while not _held_by_another_thread(lock):
            assert time.monotonic() - start < 60, "the compiling thread never took the lock"
            time.sleep(0.0005)
        pid = os.fork()
        if pid == 0:
            _child_compiles_and_runs()
        status = _wait(pid, DEADLINE_S)
    finally:
        stop.set()
        worker.join(120)
    assert status is not None, "the forked child deadlocked (killed after the deadline)"
    assert status == 0, f"the forked child failed with exit code {status}"
    assert not errors, errors
    # The parent's own locks still work after the fork.
    np.testing.assert_allclose(_scaled(7.0)(Tensor(np.ones(2, np.float32))).asnumpy(), 15.0)
