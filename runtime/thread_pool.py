"""A native thread pool for JIT code: ``gs_parallel_for(task_fn, ctx, ntasks)`` without locks.

Generated kernels split work into short tasks (1-30 us) and call::

    declare void @gs_parallel_for(ptr %task_fn, ptr %ctx, i64 %ntasks)  ; task_fn: void (ptr, i64)

which runs ``task_fn(ctx, t)`` exactly once for every ``t`` in ``[0, ntasks)`` on the calling
thread plus the workers and returns when all tasks are done, their writes visible to the caller.
The pool is itself LLVM IR (:func:`pool_ir`), compiled once per process by :func:`ensure_pool`,
which registers the symbol with LLVM (``llvm.add_symbol``, as :mod:`.blas` does for sgemm) and
starts the workers; the linker (:mod:`.linker`) calls it for any module that declares
``gs_parallel_for``.

Claim protocol. Tasks are too short for a syscall or a lock per hand-off, so dispatch is a few
atomics. One 64-bit ``ticket`` holds ``(generation << 32) | next task index``. Anyone claims a
task by load-acquire ``ticket``, load-acquire ``ntasks``, and if the index is below it
``cmpxchg(ticket, t, t + 1)``; the winner runs task ``t & 0xffffffff`` and adds 1 to ``done``
(release). The caller publishes a job in three steps: (1) ``ticket = (generation + 1) << 32 |
0xffffffff``, a new generation whose index no job reaches (closed); (2) ``fn``, ``ctx``, ``done
= 0`` and ``ntasks`` (release); (3) ``ticket = (generation + 1) << 32`` (release). A stale claim
(a ticket read during an earlier job) always fails its cmpxchg because the generation moved on,
and the job slot cannot be rewritten under a claimed task because the caller returns only once
``done == ntasks``. Why step (1): publishing with the job stores first and the new ticket last
(the obvious order) lets a claimer read the finished job's ticket ``(g, n_old)``, then the new
``ntasks > n_old``, and win ``cmpxchg((g, n_old) -> (g, n_old + 1))`` before the new ticket
lands: it runs task ``n_old`` of the new job a second time and ``done`` overshoots, so the
caller spins forever (2-core VM, 2 threads: 100-1900 such claims per 60k jobs). Closing the
generation first makes any claimer that sees the new ``ntasks`` also see a ticket its cmpxchg
cannot match. Jobs are therefore limited to 2^32 - 2 tasks (larger counts run serially). The
ticket, ``done``, the job description, ``busy`` and the configuration each sit on their own
64-byte cache line.

Why the caller never waits for a wake-up: it claims tasks like any worker, until none are left,
and only then spins (``pause``) for the tasks workers took. A sleeping or descheduled worker
just means the caller does more of the tasks itself; the worst case is the serial time plus a
few atomics. If a worker that holds a task is preempted, the caller falls back to
``sched_yield`` after about the same spin budget as the workers' idle spin.

One job slot. A task that calls ``gs_parallel_for`` again (nesting), or a second Python thread
calling compiled code at the same time, would overwrite the job in flight. So the caller first
takes ``busy`` (cmpxchg 0 -> 1); when it is taken, the call runs its tasks serially on its own
thread. Calls with fewer than 2 tasks, or with no workers, also run serially and touch nothing
shared.

Idle workers poll the ticket with ``pause`` for about 75 us (:data:`SPIN_US`; the iteration
count is calibrated once per process, since ``pause`` costs 10 to 140 cycles depending on the
CPU), then sleep with ``usleep`` from 20 us doubling up to 2 ms (:data:`NAP_US`), so an idle
process costs little CPU. Any new job generation a worker notices, claimed or not, restarts its
spin: without that, a worker that woke between jobs (or lost every claim to the caller) slept
again and took several milliseconds of back-to-back jobs to rejoin; with it, a process that keeps
calling keeps its workers hot, at the price of their spinning while it does. Workers are Python
daemon threads whose target is the native loop called through ``ctypes.CFUNCTYPE`` (which
releases the GIL); worker ``i`` returns when ``i >= workers``, so shrinking the pool stores a
smaller count and joins the threads above it.

Measured on the 2-core VM, 100k back-to-back calls from one native loop: 2 empty tasks cost
6-7 ns per call with 1 thread (serial path) and 80-210 ns with 2 threads; 8 empty tasks 16 ns
and 190-560 ns (the ticket's cache line moves between cores on every claim). With 1.7 us tasks
the worker runs half of them. An idle process uses about 0.8% of one core with 1 worker and 2%
with 4 (the 2 ms wake-ups; nothing with 1 thread).

Threads default to the CPUs this process may run on (``os.sched_getaffinity``, which respects
containers and ``taskset``, else ``os.cpu_count()``), capped at 8; ``GRAPHSPORE_NUM_THREADS`` or
:func:`set_num_threads` override it, and 1 means no workers. A forked child inherits the compiled
pool but no threads: its native state is reset and its calls run on the caller until
:func:`ensure_pool` (any compile of a module that declares ``gs_parallel_for``) or
:func:`set_num_threads` starts workers of its own. The generation wraps after 2^32 jobs; a stale
claim could only succeed if a worker stalled between two instructions for that many jobs.
"""

import atexit
import ctypes
import os
import threading
import time
import warnings

import llvmlite.binding as llvm

from . import engine
from .llvm_lock import LLVM_LOCK, CompileError
from .target import host, usable_cpus

SYMBOLS = ("gs_parallel_for",)
MAX_DEFAULT_THREADS = 8
MAX_THREADS = 64   # any request is bounded: 5000 spinning workers on 2 cores is a hang
SPIN_US = 75.0          # idle workers poll this long before sleeping
NAP_US = (20, 2000)     # then sleep this long, doubling from the first to the second
_LIBC_SYMBOLS = {"gs_pool_usleep": "usleep", "gs_pool_sched_yield": "sched_yield"}
_ENTRIES = ("gs_parallel_for", "gs_pool_worker", "gs_pool_spin", "gs_pool_configure",
            "gs_pool_after_fork")

_TAKES_I64 = ctypes.CFUNCTYPE(None, ctypes.c_int64)  # gs_pool_worker, gs_pool_spin
_CONFIGURE = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_int64)
_AFTER_FORK = ctypes.CFUNCTYPE(None)

_lock = threading.Lock()  # guards the worker threads; never held while taking LLVM_LOCK
_state = {"module": None, "error": None, "worker": None, "configure": None, "after_fork": None,
          "spins": 0, "threads": None, "workers": [], "started": False, "closed": False}


def pool_ir(pause=None):
    """LLVM IR text of the pool. ``pause`` (default: host is x86-64) relaxes spins with
    ``llvm.x86.sse2.pause``; other targets spin without it."""
    if pause is None:
        pause = host().triple.startswith("x86_64")
    relax = "call void @llvm.x86.sse2.pause()" if pause else ""
    first_nap, last_nap = NAP_US
    declare = "declare void @llvm.x86.sse2.pause() nounwind" if pause else ""
    return f"""
; One 64-byte line each: ticket | done | job: fn, ctx, ntasks | busy | config: workers, spins.
; External linkage on purpose: GlobalOpt splits internal arrays into scalar globals, which
; would undo the one-line-per-field layout.
@gs_pool_ticket = global [8 x i64] zeroinitializer, align 64
@gs_pool_done = global [8 x i64] zeroinitializer, align 64
@gs_pool_job = global [8 x i64] zeroinitializer, align 64
@gs_pool_busy = global [8 x i64] zeroinitializer, align 64
@gs_pool_config = global [8 x i64] zeroinitializer, align 64

declare i32 @gs_pool_usleep(i32) nounwind
declare i32 @gs_pool_sched_yield() nounwind
{declare}

define internal void @gs_pool_relax() nounwind alwaysinline {{
entry:
  {relax}
  ret void
}}

; Claim one task of the current job and run it here. False when none is left to claim.
define internal i1 @gs_pool_run_one() nounwind {{
entry:
  %ntasks.addr = getelementptr inbounds i8, ptr @gs_pool_job, i64 16
  %ctx.addr = getelementptr inbounds i8, ptr @gs_pool_job, i64 8
  br label %retry
retry:
  %ticket = load atomic i64, ptr @gs_pool_ticket acquire, align 64
  %ntasks = load atomic i64, ptr %ntasks.addr acquire, align 8
  %index = and i64 %ticket, 4294967295
  %left = icmp ult i64 %index, %ntasks
  br i1 %left, label %claim, label %none
claim:
  %next = add i64 %ticket, 1
  %pair = cmpxchg ptr @gs_pool_ticket, i64 %ticket, i64 %next acq_rel monotonic, align 64
  %claimed = extractvalue {{ i64, i1 }} %pair, 1
  br i1 %claimed, label %run, label %retry
run:
  %fn = load atomic ptr, ptr @gs_pool_job monotonic, align 64
  %ctx = load atomic ptr, ptr %ctx.addr monotonic, align 8
  call void %fn(ptr %ctx, i64 %index) nounwind
  %previous = atomicrmw add ptr @gs_pool_done, i64 1 release, align 64
  ret i1 true
none:
  ret i1 false
}}

define void @gs_parallel_for(ptr %fn, ptr %ctx, i64 %ntasks) nounwind {{
entry:
  %workers = load atomic i64, ptr @gs_pool_config monotonic, align 64
  %alone = icmp eq i64 %workers, 0
  %few = icmp slt i64 %ntasks, 2
  %huge = icmp ugt i64 %ntasks, 4294967294
  %either = or i1 %alone, %few
  %serial = or i1 %either, %huge
  br i1 %serial, label %serial.head, label %take
take:
  %busy = cmpxchg ptr @gs_pool_busy, i64 0, i64 1 acquire monotonic, align 64
  %owner = extractvalue {{ i64, i1 }} %busy, 1
  br i1 %owner, label %publish, label %serial.head
serial.head:
  %i = phi i64 [ 0, %entry ], [ 0, %take ], [ %i.next, %serial.body ]
  %more = icmp slt i64 %i, %ntasks
  br i1 %more, label %serial.body, label %exit
serial.body:
  call void %fn(ptr %ctx, i64 %i) nounwind
  %i.next = add i64 %i, 1
  br label %serial.head
exit:
  ret void
publish:
  ; Close the old ticket before touching the job (see the module docstring): new generation,
  ; index 0xffffffff, which no ntasks reaches. Then the job, then open it at index 0.
  %old = load atomic i64, ptr @gs_pool_ticket monotonic, align 64
  %generation = lshr i64 %old, 32
  %generation.next = add i64 %generation, 1
  %ticket = shl i64 %generation.next, 32
  %closed = or i64 %ticket, 4294967295
  store atomic i64 %closed, ptr @gs_pool_ticket monotonic, align 64
  store atomic ptr %fn, ptr @gs_pool_job monotonic, align 64
  %ctx.addr = getelementptr inbounds i8, ptr @gs_pool_job, i64 8
  store atomic ptr %ctx, ptr %ctx.addr monotonic, align 8
  store atomic i64 0, ptr @gs_pool_done monotonic, align 64
  %ntasks.addr = getelementptr inbounds i8, ptr @gs_pool_job, i64 16
  store atomic i64 %ntasks, ptr %ntasks.addr release, align 8
  store atomic i64 %ticket, ptr @gs_pool_ticket release, align 64
  %spins.addr = getelementptr inbounds i8, ptr @gs_pool_config, i64 8
  %patience = load atomic i64, ptr %spins.addr monotonic, align 8
  br label %work
work:
  %ran = call i1 @gs_pool_run_one()
  br i1 %ran, label %work, label %wait
wait:
  %spins = phi i64 [ 0, %work ], [ %spins.next, %relax ], [ %spins.next, %yield ]
  %done = load atomic i64, ptr @gs_pool_done acquire, align 64
  %finished = icmp eq i64 %done, %ntasks
  br i1 %finished, label %release, label %relax
relax:
  call void @gs_pool_relax()
  %spins.next = add i64 %spins, 1
  %patient = icmp ult i64 %spins.next, %patience
  br i1 %patient, label %wait, label %yield
yield:
  %yielded = call i32 @gs_pool_sched_yield()
  br label %wait
release:
  store atomic i64 0, ptr @gs_pool_busy release, align 64
  ret void
}}

; Worker loop: claim while there is work; when idle spin `spins` polls, restarting whenever a
; new job generation appears, then sleep {first_nap} us doubling to {last_nap} us. Returns once
; index >= the configured worker count.
define void @gs_pool_worker(i64 %index) nounwind {{
entry:
  %spins.addr = getelementptr inbounds i8, ptr @gs_pool_config, i64 8
  br label %poll
poll:
  %idle = phi i64 [ 0, %entry ], [ 0, %poll ], [ %idle.next, %spin ], [ %idle, %sleep ],
                 [ 0, %active ]
  %nap = phi i32 [ {first_nap}, %entry ], [ {first_nap}, %poll ], [ %nap, %spin ],
                 [ %nap.next, %sleep ], [ {first_nap}, %active ]
  %seen = phi i64 [ 0, %entry ], [ %seen, %poll ], [ %seen, %spin ], [ %seen, %sleep ],
                  [ %generation, %active ]
  %ran = call i1 @gs_pool_run_one()
  br i1 %ran, label %poll, label %idle.check
idle.check:
  %workers = load atomic i64, ptr @gs_pool_config monotonic, align 64
  %stop = icmp uge i64 %index, %workers
  br i1 %stop, label %exit, label %idle.watch
idle.watch:
  %ticket = load atomic i64, ptr @gs_pool_ticket monotonic, align 64
  %generation = lshr i64 %ticket, 32
  %new.job = icmp ne i64 %generation, %seen
  br i1 %new.job, label %active, label %idle.choose
active:
  br label %poll
idle.choose:
  %budget = load atomic i64, ptr %spins.addr monotonic, align 8
  %spinning = icmp ult i64 %idle, %budget
  br i1 %spinning, label %spin, label %sleep
spin:
  call void @gs_pool_relax()
  %idle.next = add i64 %idle, 1
  br label %poll
sleep:
  %slept = call i32 @gs_pool_usleep(i32 %nap)
  %doubled = shl i32 %nap, 1
  %capped = icmp ugt i32 %doubled, {last_nap}
  %nap.next = select i1 %capped, i32 {last_nap}, i32 %doubled
  br label %poll
exit:
  ret void
}}

; `count` idle polls (a ticket load and a relax), timed from Python to calibrate `spins`.
define void @gs_pool_spin(i64 %count) nounwind {{
entry:
  br label %head
head:
  %i = phi i64 [ 0, %entry ], [ %i.next, %body ]
  %more = icmp slt i64 %i, %count
  br i1 %more, label %body, label %exit
body:
  %ticket = load atomic i64, ptr @gs_pool_ticket acquire, align 64
  call void @gs_pool_relax()
  %i.next = add i64 %i, 1
  br label %head
exit:
  ret void
}}

define void @gs_pool_configure(i64 %workers, i64 %spins) nounwind {{
entry:
  %spins.addr = getelementptr inbounds i8, ptr @gs_pool_config, i64 8
  store atomic i64 %spins, ptr %spins.addr monotonic, align 8
  store atomic i64 %workers, ptr @gs_pool_config release, align 64
  ret void
}}

; In a forked child (one thread, no workers): drop whatever job the parent had in flight.
define void @gs_pool_after_fork() nounwind {{
entry:
  %ntasks.addr = getelementptr inbounds i8, ptr @gs_pool_job, i64 16
  store atomic i64 0, ptr %ntasks.addr monotonic, align 8
  %old = load atomic i64, ptr @gs_pool_ticket monotonic, align 64
  %generation = lshr i64 %old, 32
  %generation.next = add i64 %generation, 1
  %ticket = shl i64 %generation.next, 32
  store atomic i64 %ticket, ptr @gs_pool_ticket release, align 64
  store atomic i64 0, ptr @gs_pool_done monotonic, align 64
  store atomic i64 0, ptr @gs_pool_config release, align 64
  store atomic i64 0, ptr @gs_pool_busy release, align 64
  ret void
}}
"""


def default_num_threads():
    """``GRAPHSPORE_NUM_THREADS`` if set to an integer (bounded to [1, max_threads()], with a
    warning above it), else the usable CPUs capped at 8."""
    requested = os.environ.get("GRAPHSPORE_NUM_THREADS")
    if requested:
        try:
            count = max(1, int(requested))
        except ValueError:
            pass
        else:
            if count > max_threads():
                warnings.warn(f"GRAPHSPORE_NUM_THREADS={requested} is more than this process "
                              f"can use; running {max_threads()} threads", RuntimeWarning)
                count = max_threads()
            return count
    return max(1, min(usable_cpus(), MAX_DEFAULT_THREADS))


def max_threads():
    """The most threads the pool runs: 4 per usable CPU, at most MAX_THREADS. Workers spin
    while they wait, so threads beyond the cores only take time from the ones working."""
    return max(1, min(4 * usable_cpus(), MAX_THREADS))


def ensure_pool():
    """Compile the pool, register ``gs_parallel_for`` and start the workers, once per process
    (again in a forked child). True when the pool is available."""
    if _state["started"]:
        return True
    if not _load():
        return False
    with _lock:
        if not _state["started"] and not _state["closed"]:
            _resize(get_num_threads())
            _state["started"] = True
    return True


def preload():
    """Compile the pool and register ``gs_parallel_for`` without starting workers, once per
    process; True on success. The linker runs it on a background thread while a first
    compile's Python stages run (:func:`.linker.prefetch`)."""
    return _load()


def pool_error():
    """Why :func:`ensure_pool` failed (a message), or None."""
    return _state["error"]


def _load():
    """Compile the pool module and register its symbols; True on success. Takes LLVM_LOCK
    before anything else (the engine calls this while holding it)."""
    if _state["module"] is not None:
        return True
    with LLVM_LOCK:
        if _state["module"] is None and _state["error"] is None:
            try:
                _state["module"] = _compile()
            except (CompileError, OSError, AttributeError, TypeError) as error:
                _state["error"] = f"{type(error).__name__}: {error}"
    return _state["module"] is not None


def _compile():
    """Bind libc's usleep/sched_yield under private names, compile the pool, calibrate the idle
    spin and register ``gs_parallel_for``."""
    libc = ctypes.CDLL(None)
    for symbol, name in _LIBC_SYMBOLS.items():
        llvm.add_symbol(symbol, ctypes.cast(getattr(libc, name), ctypes.c_void_p).value)
    module = engine.compile_module(pool_ir(), _ENTRIES)
    _state["worker"] = _TAKES_I64(module.address("gs_pool_worker"))
    _state["configure"] = _CONFIGURE(module.address("gs_pool_configure"))
    _state["after_fork"] = _AFTER_FORK(module.address("gs_pool_after_fork"))
    _state["spins"] = _calibrate(_TAKES_I64(module.address("gs_pool_spin")))
    _state["configure"](0, _state["spins"])
    llvm.add_symbol("gs_parallel_for", module.address("gs_parallel_for"))
    return module


def _calibrate(spin, count=4000):
    """Idle polls per :data:`SPIN_US` microseconds (best of 5 timings, so a preempted run does
    not shorten the spin)."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        spin(count)
        best = min(best, time.perf_counter() - start)
    per_us = count / max(best * 1e6, 1e-3)
    return int(min(max(per_us * SPIN_US, 256), 1 << 24))


def get_num_threads():
    """Threads that run tasks (the caller plus the workers); 1 means everything is serial."""
    if _state["threads"] is None:
        _state["threads"] = default_num_threads()
    return _state["threads"]


def set_num_threads(count):
    """Use ``count`` threads (``count - 1`` workers), starting or stopping workers now if the
    pool is running in this process."""
    count = int(count)
    if not 1 <= count <= max_threads():
        raise ValueError(f"thread count must be between 1 and {max_threads()} (4 per usable "
                         f"CPU, at most {MAX_THREADS}), got {count}")
    _state["threads"] = count
    if _state["module"] is not None and not _state["closed"]:
        with _lock:
            _resize(count)
            _state["started"] = True


def _resize(threads):
    """Run ``threads - 1`` workers: store the count, then join the surplus or start the missing
    ones. Called with ``_lock`` held."""
    workers = _state["workers"]
    wanted = max(0, threads - 1)
    _state["configure"](wanted, _state["spins"])
    while len(workers) > wanted:
        workers.pop().join()
    while len(workers) < wanted:
        index = len(workers)
        thread = threading.Thread(target=_state["worker"], args=(index,), daemon=True,
                                  name=f"graphspore-pool-{index}")
        thread.start()
        workers.append(thread)


def _shutdown():
    """atexit: stop and join the workers so none is left in native code at finalisation."""
    with _lock:
        _state["closed"] = True
        if _state["module"] is not None:
            _resize(1)


def _after_fork_in_child():
    """The child has the compiled pool but none of the parent's threads: forget the workers,
    reset the native job state; workers start again on the next ensure_pool()."""
    global _lock
    _lock = threading.Lock()
    _state["workers"] = []
    _state["started"] = False
    if _state["after_fork"] is not None:
        _state["after_fork"]()


atexit.register(_shutdown)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
