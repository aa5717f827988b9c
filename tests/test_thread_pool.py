"""Thread pool: gs_parallel_for runs every task exactly once across jobs, threads, nesting,
resizing and fork; workers really take tasks; the engine binds the symbol on demand."""

import ctypes
import os
import subprocess
import sys
import textwrap
import threading
import time

import llvmlite.binding as llvm
import numpy as np
import pytest

from graphspore.runtime import CompileError, compile_module, thread_pool
from graphspore.runtime.target import usable_cpus

# Tasks: count_task bumps counters[t]; fill_task writes row t of a table; whoami_task records
# the thread (pthread_self) and spins a little; outer_task starts a nested parallel_for.
TEST_IR = """
declare void @gs_parallel_for(ptr, ptr, i64)
declare i64 @gs_test_pthread_self()

define void @count_task(ptr %counters, i64 %t) {
entry:
  %slot = getelementptr inbounds i64, ptr %counters, i64 %t
  %old = atomicrmw add ptr %slot, i64 1 monotonic
  ret void
}

; Job j counts tasks into its own region: counters[offset_j : offset_j + sizes[j]].
define void @count_jobs(ptr %counters, ptr %sizes, i64 %jobs) {
entry:
  br label %head
head:
  %j = phi i64 [ 0, %entry ], [ %j.next, %body ]
  %offset = phi i64 [ 0, %entry ], [ %offset.next, %body ]
  %more = icmp slt i64 %j, %jobs
  br i1 %more, label %body, label %exit
body:
  %size.addr = getelementptr inbounds i64, ptr %sizes, i64 %j
  %size = load i64, ptr %size.addr
  %region = getelementptr inbounds i64, ptr %counters, i64 %offset
  call void @gs_parallel_for(ptr @count_task, ptr %region, i64 %size)
  %positive = icmp sgt i64 %size, 0
  %used = select i1 %positive, i64 %size, i64 0
  %offset.next = add i64 %offset, %used
  %j.next = add i64 %j, 1
  br label %head
exit:
  ret void
}

; ctx = { ptr table, i64 width }: table[t * width + k] = t * k + 7.
define void @fill_task(ptr %ctx, i64 %t) {
entry:
  %table = load ptr, ptr %ctx
  %width.addr = getelementptr inbounds i8, ptr %ctx, i64 8
  %width = load i64, ptr %width.addr
  %row.start = mul i64 %t, %width
  br label %head
head:
  %k = phi i64 [ 0, %entry ], [ %k.next, %body ]
  %more = icmp slt i64 %k, %width
  br i1 %more, label %body, label %exit
body:
  %product = mul i64 %t, %k
  %value = add i64 %product, 7
  %index = add i64 %row.start, %k
  %slot = getelementptr inbounds i64, ptr %table, i64 %index
  store i64 %value, ptr %slot
  %k.next = add i64 %k, 1
  br label %head
exit:
  ret void
}

define void @fill(ptr %table, i64 %rows, i64 %width) {
entry:
  %ctx = alloca { ptr, i64 }
  store ptr %table, ptr %ctx
  %width.addr = getelementptr inbounds i8, ptr %ctx, i64 8
  store i64 %width, ptr %width.addr
  call void @gs_parallel_for(ptr @fill_task, ptr %ctx, i64 %rows)
  ret void
}

; ctx = { ptr ids, i64 spin }: ids[t] = pthread_self(), then `spin` volatile stores.
define void @whoami_task(ptr %ctx, i64 %t) {
entry:
  %scratch = alloca i64
  %ids = load ptr, ptr %ctx
  %spin.addr = getelementptr inbounds i8, ptr %ctx, i64 8
  %spin = load i64, ptr %spin.addr
  %self = call i64 @gs_test_pthread_self()
  %slot = getelementptr inbounds i64, ptr %ids, i64 %t
  store i64 %self, ptr %slot
  br label %head
head:
  %k = phi i64 [ 0, %entry ], [ %k.next, %body ]
  %more = icmp slt i64 %k, %spin
  br i1 %more, label %body, label %exit
body:
  store volatile i64 %k, ptr %scratch
  %k.next = add i64 %k, 1
  br label %head
exit:
  ret void
}

; `jobs` jobs of `ntasks` tasks; job j records into ids[j * ntasks ...].
define void @whoami_jobs(ptr %ids, i64 %ntasks, i64 %jobs, i64 %spin) {
entry:
  %ctx = alloca { ptr, i64 }
  %spin.addr = getelementptr inbounds i8, ptr %ctx, i64 8
  store i64 %spin, ptr %spin.addr
  br label %head
head:
  %j = phi i64 [ 0, %entry ], [ %j.next, %body ]
  %more = icmp slt i64 %j, %jobs
  br i1 %more, label %body, label %exit
body:
  %offset = mul i64 %j, %ntasks
  %region = getelementptr inbounds i64, ptr %ids, i64 %offset
  store ptr %region, ptr %ctx
  call void @gs_parallel_for(ptr @whoami_task, ptr %ctx, i64 %ntasks)
  %j.next = add i64 %j, 1
  br label %head
exit:
  ret void
}

; Outer task t runs a nested parallel_for of 5 count tasks over counters[5 t : 5 t + 5].
define void @outer_task(ptr %counters, i64 %t) {
entry:
  %offset = mul i64 %t, 5
  %region = getelementptr inbounds i64, ptr %counters, i64 %offset
  call void @gs_parallel_for(ptr @count_task, ptr %region, i64 5)
  ret void
}

define void @nested(ptr %counters, i64 %outer) {
entry:
  call void @gs_parallel_for(ptr @outer_task, ptr %counters, i64 %outer)
  ret void
}

define void @noop_task(ptr %ctx, i64 %t) {
entry:
  ret void
}

; `calls` back-to-back gs_parallel_for calls of `ntasks` empty tasks (dispatch cost).
define void @dispatch_loop(i64 %calls, i64 %ntasks) {
entry:
  br label %head
head:
  %i = phi i64 [ 0, %entry ], [ %i.next, %body ]
  %more = icmp slt i64 %i, %calls
  br i1 %more, label %body, label %exit
body:
  call void @gs_parallel_for(ptr @noop_task, ptr null, i64 %ntasks)
  %i.next = add i64 %i, 1
  br label %head
exit:
  ret void
}
"""

_P, _I = ctypes.c_void_p, ctypes.c_int64
_SIGNATURES = {"count_jobs": (_P, _P, _I), "fill": (_P, _I, _I), "whoami_jobs": (_P, _I, _I, _I),
               "nested": (_P, _I), "dispatch_loop": (_I, _I)}
POOL_THREAD = "graphspore-pool-"


def _bind_pthread_self():
    libc = ctypes.CDLL(None)
    llvm.add_symbol("gs_test_pthread_self",
                    ctypes.cast(libc.pthread_self, ctypes.c_void_p).value)


HANG_SECONDS = 60


def _bounded(native, *args):
    """Call `native(*args)` on a daemon thread and fail, instead of hanging the suite, if it has
    not returned after HANG_SECONDS (a lost or doubled task leaves the caller spinning)."""
    caller = threading.Thread(target=native, args=args, daemon=True)
    caller.start()
    caller.join(HANG_SECONDS)
    assert not caller.is_alive(), f"gs_parallel_for did not return within {HANG_SECONDS} s"


class Kernels:
    """The test module's entry points as ctypes functions taking numpy arrays. Calls that do
    not check which thread ran a task are bounded in time (:func:`_bounded`)."""

    def __init__(self, module):
        self.module = module
        for name, args in _SIGNATURES.items():
            native = ctypes.CFUNCTYPE(None, *args)(module.address(name))
            if name in ("count_jobs", "fill", "nested"):
                setattr(self, "_" + name, lambda *a, native=native: _bounded(native, *a))
            else:
                setattr(self, "_" + name, native)

    def count_jobs(self, sizes):
        """Run one job per entry of ``sizes``; return the counters (one region per job)."""
        sizes = np.ascontiguousarray(sizes, dtype=np.int64)
        total = int(np.clip(sizes, 0, None).sum())
        counters = np.zeros(max(1, total), np.int64)
        self._count_jobs(counters.ctypes.data, sizes.ctypes.data, len(sizes))
        return counters[:total]

    def fill(self, rows, width):
        table = np.full((rows, width), -1, np.int64)
        self._fill(table.ctypes.data, rows, width)
        return table

    def whoami(self, ntasks, jobs, spin):
        ids = np.zeros((jobs, ntasks), np.uint64)
        self._whoami_jobs(ids.ctypes.data, ntasks, jobs, spin)
        return ids

    def nested(self, outer):
        counters = np.zeros(outer * 5, np.int64)
        self._nested(counters.ctypes.data, outer)
        return counters

    def dispatch_loop(self, calls, ntasks):
        self._dispatch_loop(calls, ntasks)


@pytest.fixture(scope="module")
def kernels(tmp_path_factory):
    _bind_pthread_self()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRAPHSPORE_CACHE_DIR", str(tmp_path_factory.mktemp("gs-cache")))
        module = compile_module(TEST_IR, list(_SIGNATURES))
    return Kernels(module)


@pytest.fixture
def threads():
    """Set the pool size for one test (returns the setter) and restore it afterwards."""
    saved = thread_pool.get_num_threads()
    yield thread_pool.set_num_threads
    thread_pool.set_num_threads(saved)


def pool_threads():
    return [t for t in threading.enumerate() if t.name.startswith(POOL_THREAD) and t.is_alive()]


@pytest.mark.parametrize("ntasks", [0, 1, 2, 7, 1000])
def test_every_task_runs_exactly_once(kernels, threads, ntasks):
    threads(2)
    assert np.array_equal(kernels.count_jobs([ntasks]), np.ones(ntasks, np.int64))
    expected = np.arange(ntasks)[:, None] * np.arange(33)[None, :] + 7
    assert np.array_equal(kernels.fill(ntasks, 33), expected)


def test_negative_task_count_runs_nothing(kernels, threads):
    threads(2)
    assert kernels.count_jobs([-5, 3, -1]).tolist() == [1, 1, 1]


def test_big_table_writes_are_visible_to_the_caller(kernels, threads):
    threads(2)
    table = kernels.fill(1000, 256)
    assert np.array_equal(table, np.arange(1000)[:, None] * np.arange(256)[None, :] + 7)


def test_back_to_back_jobs_each_run_every_task_once(kernels, threads):
    """Small jobs between larger ones: the pattern that exposes a claim on the previous job's
    exhausted ticket against the next job's larger ntasks (see the thread_pool docstring)."""
    threads(2)
    rng = np.random.default_rng(7)
    for _ in range(4):
        kernels.whoami(ntasks=4, jobs=20, spin=2000)  # wake the worker from its back-off
        sizes = rng.integers(0, 40, size=40000)
        sizes[::2] = 2
        counters = kernels.count_jobs(sizes)
        assert counters.size == sizes.sum()
        assert np.all(counters == 1), f"{np.count_nonzero(counters != 1)} tasks ran != once"


def test_more_threads_than_cores_stay_correct(kernels, threads):
    threads(4)
    sizes = np.random.default_rng(8).integers(0, 12, size=5000)
    assert np.all(kernels.count_jobs(sizes) == 1)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 CPUs to see a worker run tasks")
def test_workers_run_some_tasks(kernels, threads):
    threads(2)
    caller = threading.get_ident()  # pthread_self() of this thread on POSIX
    workers = {t.ident for t in pool_threads()}
    assert len(workers) == 1
    seen = set()
    deadline = time.monotonic() + 5.0  # a worker asleep in its back-off wakes within 2 ms
    while not workers <= seen and time.monotonic() < deadline:
        ids = kernels.whoami(ntasks=4, jobs=200, spin=3000)
        seen |= set(ids.ravel().tolist())
    assert seen <= workers | {caller}
    assert workers <= seen, "no task ran on the worker thread"


def test_one_thread_runs_everything_on_the_caller(kernels, threads):
    threads(1)
    assert thread_pool.get_num_threads() == 1 and pool_threads() == []
    ids = kernels.whoami(ntasks=8, jobs=50, spin=100)
    assert set(ids.ravel().tolist()) == {threading.get_ident()}
    assert np.all(kernels.count_jobs([0, 1, 2, 7, 100]) == 1)


def test_nested_parallel_for_runs_inner_tasks_serially(kernels, threads):
    threads(2)
    for outer in (1, 2, 7, 64):
        assert np.array_equal(kernels.nested(outer), np.ones(outer * 5, np.int64))


def test_concurrent_callers_each_get_every_task_once(kernels, threads):
    threads(2)
    rng = np.random.default_rng(11)
    sizes = [rng.integers(0, 30, size=3000) for _ in range(3)]
    results = [None] * len(sizes)

    def call(index):
        results[index] = kernels.count_jobs(sizes[index])

    callers = [threading.Thread(target=call, args=(i,), daemon=True) for i in range(len(sizes))]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(HANG_SECONDS)
        assert not caller.is_alive(), "a concurrent caller did not return"
    for size, counters in zip(sizes, results):
        assert counters.size == size.sum() and np.all(counters == 1)


def test_set_num_threads_shrinks_and_grows(kernels, threads):
    threads(3)
    assert thread_pool.get_num_threads() == 3 and len(pool_threads()) == 2
    threads(1)
    assert len(pool_threads()) == 0
    assert set(kernels.whoami(4, 20, 10).ravel().tolist()) == {threading.get_ident()}
    threads(2)
    assert thread_pool.get_num_threads() == 2 and len(pool_threads()) == 1
    assert np.all(kernels.count_jobs(np.full(2000, 5)) == 1)
    with pytest.raises(ValueError):
        thread_pool.set_num_threads(0)


def test_default_thread_count_honours_the_environment(monkeypatch):
    monkeypatch.setenv("GRAPHSPORE_NUM_THREADS", "3")
    assert thread_pool.default_num_threads() == 3
    monkeypatch.setenv("GRAPHSPORE_NUM_THREADS", "0")
    assert thread_pool.default_num_threads() == 1
    monkeypatch.delenv("GRAPHSPORE_NUM_THREADS")
    assert 1 <= thread_pool.default_num_threads() <= thread_pool.MAX_DEFAULT_THREADS


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_runs_serially_then_starts_its_own_workers(kernels, threads):
    threads(2)
    assert np.all(kernels.count_jobs(np.full(100, 3)) == 1)
    pid = os.fork()
    if pid == 0:  # child: report through the exit status only
        status = 1
        try:
            ok = pool_threads() == []
            ids = kernels.whoami(4, 20, 10)
            ok = ok and set(ids.ravel().tolist()) == {threading.get_ident()}
            ok = ok and bool(np.all(kernels.count_jobs(np.full(500, 6)) == 1))
            ok = ok and thread_pool.ensure_pool() and len(pool_threads()) == 1
            ok = ok and bool(np.all(kernels.count_jobs(np.full(2000, 6)) == 1))
            status = 0 if ok else 2
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(pool_threads()) == 1


def test_engine_refuses_the_symbol_when_the_pool_is_unavailable(monkeypatch):
    monkeypatch.setattr(thread_pool, "ensure_pool", lambda: False)
    monkeypatch.setattr(thread_pool, "pool_error", lambda: "no pool here")
    text = ("declare void @gs_parallel_for(ptr, ptr, i64)\n"
            "define void @f(ptr %p) {\nentry:\n"
            "  call void @gs_parallel_for(ptr null, ptr %p, i64 0)\n  ret void\n}\n")
    with pytest.raises(CompileError, match="gs_parallel_for.*no pool here"):
        compile_module(text, ["f"])


def test_fresh_process_binds_the_pool_on_demand(tmp_path):
    """No ensure_pool() call: compiling a module that declares gs_parallel_for starts the pool,
    and GRAPHSPORE_NUM_THREADS=1 keeps every task on the caller."""
    script = textwrap.dedent("""
        import threading, numpy as np
        from graphspore.runtime import compile_module, thread_pool
        import test_thread_pool as t
        t._bind_pthread_self()
        k = t.Kernels(compile_module(t.TEST_IR, list(t._SIGNATURES)))
        assert thread_pool.get_num_threads() == 1 and t.pool_threads() == []
        ids = k.whoami(4, 10, 10)
        assert set(ids.ravel().tolist()) == {threading.get_ident()}
        assert np.all(k.count_jobs(np.full(100, 7)) == 1)
        print("ok")
    """)
    path = os.pathsep.join(filter(None, [os.path.dirname(__file__),
                                         os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, GRAPHSPORE_NUM_THREADS="1", GRAPHSPORE_CACHE_DIR=str(tmp_path),
               PYTHONPATH=path)
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs os.sched_setaffinity")
def test_thread_counts_follow_the_affinity_mask_not_cpu_count():
    """A process pinned to one CPU gets one pool thread and one BLAS thread, whatever
    os.cpu_count() says (run in a child so this process' mask is untouched)."""
    script = (
        "import os\n"
        "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
        "from graphspore.runtime import blas, thread_pool\n"
        "from graphspore.runtime.target import usable_cpus\n"
        "print(usable_cpus(), thread_pool.default_num_threads(), blas._default_threads(),\n"
        "      blas.get_num_threads() if blas.ensure_blas() else 1)\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("GRAPHSPORE_NUM_THREADS", "GRAPHSPORE_BLAS_THREADS")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, check=True).stdout.split()
    assert out == ["1", "1", "1", "1"]


def test_openblas_runs_one_thread_unless_asked_and_never_more_than_the_cpus():
    """Products are split over the runtime's pool, so OpenBLAS's own pool stays at one thread;
    GRAPHSPORE_BLAS_THREADS raises it, capped at the usable CPUs (run in children)."""
    script = ("from graphspore.runtime import blas\n"
              "print(blas._default_threads(), blas.get_num_threads() if blas.ensure_blas() "
              "else 1)\n")
    base = {k: v for k, v in os.environ.items()
            if k not in ("GRAPHSPORE_NUM_THREADS", "GRAPHSPORE_BLAS_THREADS")}
    run = lambda env: subprocess.run([sys.executable, "-c", script], capture_output=True,
                                     text=True, env=env, check=True).stdout.split()
    assert run(base) == ["1", "1"]
    asked = run({**base, "GRAPHSPORE_BLAS_THREADS": "1000"})
    assert asked[0] == str(usable_cpus())
