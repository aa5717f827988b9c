"""JIT compilation of one specialised function, and the program object that runs it.

`compile_program` runs `pipeline.STAGES` (parse through native code, the verifier and the
dumps included) for the JIT target and wraps the result: a `Program` maps host objects onto
the executable's buffers and rebuilds the Python structure of the result. A graph with gathers
or scatters has one hidden last output (`ir.passes.index_checks`); its program raises
IndexError after a call that met an out-of-range index (having written no Parameter). Programs without one check nothing.
Prints (`gs.print`) become hidden outputs before the check output and a callback at the end of
the native entry (`ir.passes.prints`, the pipeline's `prints` stage).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .ir import Graph, GraphsporeError
from .ir import dump as ir_dump
from .ir.passes.index_checks import index_error
from . import pipeline, runtime
from . import printing  # noqa: F401  (installs MindSpore's print format)
from .runtime import ArgumentError, hook_callback
from .runtime.fork_guard import guard

# Taken by a fork before LLVM_LOCK (registered later, so its "before" hook runs first).
_COMPILE_LOCK = guard(threading.RLock())


def _raising_hook_errors(check):
    """`check` (or nothing) followed by re-raising a gradient hook's exception."""
    def checked(last):
        if check is not None:
            check(last)
        hook_callback.raise_pending()
    return checked


@dataclass
class CompileStats:
    """What the dump summary table reports for one compiled function."""

    name: str
    signature: str
    ops_before: int
    ops_after: int
    kernels: int
    workspace_bytes: int
    compile_ms: float
    cache_hit: bool
    program_hit: bool = False       # loaded whole from the disk program cache (warm_start)


STATS_LIMIT = 1000
STATS: list[CompileStats] = []     # the latest STATS_LIMIT compilations, oldest first
_compiles = 0                      # compilations ever recorded in this process


def compile_count() -> int:
    """How many compilations this process has recorded (a mark for `stats_since`)."""
    return _compiles


def stats_since(mark: int) -> list[CompileStats]:
    """The statistics of the compilations after `compile_count()` returned `mark` (those
    still among the latest STATS_LIMIT)."""
    return STATS[max(0, len(STATS) - (_compiles - mark)):]


def record(stats: CompileStats) -> None:
    """Count one compilation (or program loaded from disk) and keep its statistics."""
    global _compiles
    STATS.append(stats)
    _compiles += 1
    if len(STATS) > STATS_LIMIT:
        del STATS[:len(STATS) - STATS_LIMIT]
    ir_dump.record_stats(stats)


@dataclass(eq=False)        # programs are compared by identity (and a loaded one
class Program:              # must not build its graph to be compared)
    """A compiled graph ready to run: `sources[i]` says where input i comes from (an int k =
    the k-th tensor argument; otherwise the bound Parameter object). `checks` are the index
    sites of the hidden last output, if the graph has one. `graph` may be given as a
    function making it (a program loaded from the disk cache builds it only if asked);
    `updates` says whether the program assigns Parameters (read from the graph if None)."""

    executable: Any
    sources: list
    out_tree: Any
    graph: Graph = field(repr=False)
    module: Any = None
    stats: CompileStats | None = None
    _wrap: Any = field(default=None, repr=False)
    checks: tuple = ()
    training_flags: tuple = ()      # ((cell, flag), ...): the Cell flags the graph was built with
    updates: bool | None = None

    def matches_training_flags(self) -> bool:
        """Whether every Cell flag this program was built with still has that value."""
        return all(cell.__dict__.get("_training", False) == flag
                   for cell, flag in self.training_flags)
    guards: Any = None      # frontend.guards.Guards of the Python values folded in, or None

    def __post_init__(self):
        if self.updates is None:
            self.updates = bool(self.graph.updates)
        self._plain = all(type(s) is int and s == i for i, s in enumerate(self.sources))
        self._n_args = sum(type(s) is int for s in self.sources)
        self._single = type(self.out_tree) is int
        check = self._check_indices if self.checks else None
        if hook_callback.SHAPES:        # gradient hooks exist: one may raise inside the run
            check = _raising_hook_errors(check)
        if self._plain and self._single and check is None:  # the common case, no indirection
            execute, wrap, index = self.executable, self._wrap, self.out_tree
            self.run = lambda arrays: wrap(execute(*arrays)[index])
            self.run_tensors = execute.fast_call(wrap, index)
        elif self._plain and self._single:
            self.run_tensors = self.executable.fast_call(self._wrap, self.out_tree, check)
        else:
            self.run_tensors = lambda tensors: self.run([t._array for t in tensors])
        if self.updates:
            self._serialise_updates()

    def _serialise_updates(self) -> None:
        """A program that updates Parameters in place runs one call at a time: two threads
        training one network would otherwise read and write its weights interleaved (a
        lost update). The result is the sequential run of the calls in some order."""
        lock = threading.RLock()
        for name in ("run", "run_tensors", "run_into"):
            setattr(self, name, _locked(lock, getattr(self, name)))

    def _check_indices(self, hidden) -> None:
        """Raise IndexError if the hidden check output reports an out-of-range index."""
        if hidden[0]:
            raise index_error(self.checks, hidden)

    def run(self, tensor_arrays: list) -> Any:
        """Run on the tensor arguments' host arrays; returns the Python-structured result."""
        if self._plain:
            outputs = self.executable(*tensor_arrays)
        else:
            if len(tensor_arrays) != self._n_args:
                raise ArgumentError(f"expected {self._n_args} tensor arguments, got "
                                    f"{len(tensor_arrays)}")
            outputs = self.executable(*[tensor_arrays[s] if type(s) is int else s._array
                                        for s in self.sources])
        if self.checks:
            self._check_indices(outputs[-1])
        if hook_callback.SHAPES:                  # a gradient hook may have raised
            hook_callback.raise_pending()
        if self._single:
            return self._wrap(outputs[self.out_tree])
        return rebuild(self.out_tree, outputs, self._wrap)


    def run_into(self, tensor_arrays: list, outputs: list) -> None:
        """Run writing into caller-owned output arrays (benchmarks, reused buffers); the hidden
        check output, if any, is not among them."""
        arrays = [tensor_arrays[s] if type(s) is int else s._array for s in self.sources]
        if not self.checks:
            self.executable.call_into(arrays, outputs)
            return
        hidden = np.empty(*self.executable.output_specs[-1])
        self.executable.call_into(arrays, list(outputs) + [hidden])
        self._check_indices(hidden)


def _graph_of(program: Program) -> Graph:
    graph = program.__dict__["_graph"]
    if not isinstance(graph, Graph):          # a loaded program's: made on first use
        graph = program.__dict__["_graph"] = graph()
    return graph


def _set_graph(program: Program, graph) -> None:
    program.__dict__["_graph"] = graph


Program.graph = property(_graph_of, _set_graph, doc="The compiled graph (after simplify).")


def _locked(lock, fn):
    def call(*args):
        with lock:
            return fn(*args)
    return call


def rebuild(tree, outputs: list, wrap) -> Any:
    """Rebuild the Python result: ints index `outputs`, ("const", v) is a constant."""
    if type(tree) is int:
        return wrap(outputs[tree])
    if tree is None:
        return None
    if type(tree) is tuple and len(tree) == 2 and tree[0] == "const":
        return tree[1]
    if type(tree) is list:
        return [rebuild(t, outputs, wrap) for t in tree]
    if type(tree) is dict:
        return {k: rebuild(t, outputs, wrap) for k, t in tree.items()}
    return tuple(rebuild(t, outputs, wrap) for t in tree)


def signature_text(graph: Graph) -> str:
    return ", ".join(str(v.type) for v in graph.args)


def compile_program(source: pipeline.Source, abstract_args: tuple, kwargs: dict, wrap
                    ) -> Program:
    """Run every stage of `pipeline.STAGES` for `source` specialised to the abstract
    arguments, and wrap the native code as a `Program` (`wrap` makes an output a Tensor)."""
    with _COMPILE_LOCK:
        start = time.perf_counter()
        c = pipeline.run(pipeline.Compilation(source, abstract_args, kwargs))
        graph = c.graph
        executable = runtime.Executable(c.native, c.entry, _specs(graph.inputs),
                                        _specs(graph.outputs), c.plan.arena_size,
                                        input_names=[v.name or f"arg{i}" for i, v in
                                                     enumerate(graph.inputs)])
        stats = CompileStats(c.name, signature_text(graph), c.ops_before, len(graph.ops),
                             len(c.program.kernels), c.plan.arena_size,
                             (time.perf_counter() - start) * 1e3,
                             getattr(c.native, "cache_hit", False))
        record(stats)
        return Program(executable, sources_for(graph), c.out_tree, graph, c.native, stats,
                       wrap, c.checks, c.training_flags)


def _specs(values) -> list:
    """(shape, numpy dtype) of each value: what the executable checks and allocates."""
    return [(v.shape, v.dtype.np) for v in values]


def sources_for(graph: Graph) -> list:
    """Where each graph input comes from at call time: arg index or bound Parameter."""
    sources, k = [], 0
    for v in graph.inputs:
        if v in graph.bindings:
            sources.append(graph.bindings[v])
        else:
            sources.append(k)
            k += 1
    return sources


__all__ = ["Program", "compile_program", "sources_for", "rebuild", "STATS", "GraphsporeError",
           "np"]
