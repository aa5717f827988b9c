"""The compile pipeline: ONE ordered list of named stages, from Python source to native code.

`STAGES` is the list that `jit`, `grad`/`value_and_grad`, GRAPH_MODE Cells (through
`compiler.compile_program`), `graphspore compile` (`aot.export`), `graphspore opt` and the
dumps all run. A stage reads and writes fields of one `Compilation`:

    parse         source -> graph                     (frontend; dump alias `graph`)
    autodiff      graph -> graph with the VJPs         (grad objects only; alias `grad`)
    index_checks  graph -> graph + hidden check output (ir.passes.index_checks)
    simplify      graph -> graph                       (alias `opt`)
    fuse          graph -> kernels                     (codegen.fuse; f16 matmul/sum widened)
    memory_plan   kernels -> arena offsets             (codegen.memory_plan)
    loops         kernels + plan -> loop nests         (codegen.lower_to_loops)
    llvm          loop nests -> LLVM IR text           (codegen.emit_llvm)
    object        LLVM IR -> native code               (the target: JIT or a PIC object;
                                                        its dump is the assembly, alias `asm`)

The verifier runs after every stage that produces a graph. Every stage is dumpable under its
name (`GRAPHSPORE_DUMP=simplify,loops`, `graphspore dump --stage fuse`): `Stage.dump` turns
the stage's product into text, and a stage added to the list with `graph_stage(name, pass)` is
dumpable with no other change. Files are `NN_<function>_<stage>.<ext>` (`ir.dump`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .ir import Graph
from .ir import dump as ir_dump
from .ir.passes.index_checks import add_index_checks, drop_static_checks
from .ir.passes.simplify import simplify
from .ir.verify import verify


@dataclass
class Source:
    """What to compile: `parse(abstract_args, kwargs) -> (graph, out_tree)` and, for grad
    objects, `differentiate(graph, out_tree, abstract_args) -> (graph, out_tree)`. An empty
    `name` means the parsed graph's name."""

    name: str
    parse: Callable
    differentiate: Callable | None = None


class JitTarget:
    """Native code loaded into this process: the runtime's MCJIT and object cache."""

    parallel = True          # kernels may split work over the runtime's thread pool

    def __init__(self):
        from .runtime import linker
        linker.prefetch()    # the pool compiles on another core while the Python stages run

    def llvm_text(self, llvm_ir: str, entry: str) -> str:
        """The text `build` compiles (the `llvm` dump): the trampoline added."""
        from .runtime.engine import prepare_ir
        return prepare_ir(llvm_ir, [entry])

    def build(self, llvm_ir: str, entry: str):
        from . import runtime
        return runtime.compile_module(llvm_ir, [entry])

    def assembly(self, native) -> str:
        return native.asm


@dataclass
class Compilation:
    """One function on its way through the stages; each stage fills in its field."""

    source: Source | None = None
    abstract_args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    target: Any = field(default_factory=JitTarget)
    name: str = ""
    graph: Graph | None = None        # the current graph (parse .. simplify)
    out_tree: Any = None
    training_flags: tuple = ()        # ((cell, its training flag), ...) that the parse read
    ops_before: int = 0               # ops of the graph the passes start from
    checks: tuple = ()                # index-check sites of the hidden last output
    fused: Any = None                 # codegen.fuse.FusedGraph
    plan: Any = None                  # codegen.memory_plan.MemoryPlan
    program: Any = None               # codegen.loops.Program
    llvm_ir: str | None = None
    native: Any = None                # the target's product (runtime CompiledModule, ...)

    @property
    def entry(self) -> str:
        return symbol_for(self.name)


def symbol_for(name: str) -> str:
    """The native symbol of a graph name: `gs_` + the name with non-identifier characters
    replaced by `_` (the JIT's entry and the exported C symbol alike)."""
    return "gs_" + "".join(c if c.isalnum() or c == "_" else "_" for c in name)


@dataclass(frozen=True)
class Stage:
    """A named step: `run(c)` updates the compilation, `dump(c)` gives `[(text, ext)]` (empty
    when the stage did nothing), `needs` is the field of `c` it reads (so a run that starts
    later, `graphspore opt FILE.mlir -p ...`, fails clearly without it), `graph` says the
    stage's product is `c.graph` (verified after the stage), `aliases` are older dump names
    that still select it."""

    name: str
    run: Callable[[Compilation], None]
    dump: Callable[[Compilation], list]
    needs: str = "graph"
    graph: bool = False
    aliases: tuple[str, ...] = ()


def _graph_dump(c: Compilation) -> list:
    from .ir.printer import print_graph      # (only dumps print: not imported with graphspore)
    return [(print_graph(c.graph), "mlir")]


def graph_stage(name: str, graph_pass: Callable[[Graph], Graph], aliases=()) -> Stage:
    """A stage running the `Graph -> Graph` pass `graph_pass` on `c.graph`."""
    def run(c: Compilation) -> None:
        c.graph = graph_pass(c.graph)
    return Stage(name, run, _graph_dump, "graph", graph=True, aliases=tuple(aliases))


# ---------------------------------------------------------------------------- the stages

def _parse(c: Compilation) -> None:
    from .nn.cell import training_reads
    with training_reads() as cells:
        c.graph, c.out_tree = c.source.parse(c.abstract_args, c.kwargs)
    c.training_flags = tuple((cell, cell.__dict__.get("_training", False))
                             for cell in cells.values())
    c.name = c.name or c.source.name or c.graph.name
    c.ops_before = len(c.graph.ops)


def _autodiff(c: Compilation) -> None:
    if c.source.differentiate is not None:
        c.graph, c.out_tree = c.source.differentiate(c.graph, c.out_tree, c.abstract_args)
        c.ops_before = len(c.graph.ops)


def _drawn_graph(c: Compilation) -> list:
    return _graph_dump(c) + [(ir_dump.to_dot(c.graph), "dot")]


def _index_checks(c: Compilation) -> None:
    c.graph, c.checks = add_index_checks(c.graph)


def _simplify(c: Compilation) -> None:
    c.graph, c.checks = drop_static_checks(simplify(c.graph), c.checks)


def _fuse(c: Compilation) -> None:
    from .codegen import epilogue_ok, fuse, widen_half_ops
    c.fused = fuse(widen_half_ops(c.graph), epilogue_ok=epilogue_ok)


def _memory_plan(c: Compilation) -> None:
    from .codegen.memory_plan import plan_memory
    c.plan = plan_memory(c.fused)


def _plan_text(c: Compilation) -> list:
    """One line per kernel result placed in the arena: offset, bytes, kernel, value."""
    lines = [f"// workspace {c.plan.arena_size} bytes"]
    for kernel in c.fused.kernels:
        offset = c.plan.offsets.get(kernel.value)
        if offset is not None and kernel.kind != "copy":
            name = f" %{kernel.value.name}" if kernel.value.name else ""
            lines.append(f"ws+{offset:<8} {kernel.value.type.nbytes:>8} B  "
                         f"{kernel.name}{name}: {kernel.value.type}")
    return [("\n".join(lines) + "\n", "plan")]


def _loops(c: Compilation) -> None:
    from .codegen import lower_to_loops
    c.program = lower_to_loops(c.fused, c.plan, c.entry)


def _llvm(c: Compilation) -> None:
    from .codegen.emit_llvm import emit_module
    from .runtime.target import add_function_attributes, host
    target = host()
    text = emit_module(c.program, target.triple, target.data_layout, c.target.parallel)
    c.llvm_ir = add_function_attributes(text)


def _object(c: Compilation) -> None:
    c.native = c.target.build(c.llvm_ir, c.entry)


def _loops_text(c: Compilation) -> list:
    from .codegen.loops import print_loops
    return [(print_loops(c.program), "loops")]


STAGES: list[Stage] = [
    Stage("parse", _parse, _drawn_graph, "source", graph=True, aliases=("graph",)),
    Stage("autodiff", _autodiff,
          lambda c: _drawn_graph(c) if c.source.differentiate is not None else [],
          "source", graph=True, aliases=("grad",)),
    Stage("index_checks", _index_checks, _graph_dump, graph=True),
    Stage("simplify", _simplify, _graph_dump, graph=True, aliases=("opt",)),
    Stage("fuse", _fuse, lambda c: [(str(c.fused) + "\n", "fuse")]),
    Stage("memory_plan", _memory_plan, _plan_text, "fused"),
    Stage("loops", _loops, _loops_text, "plan"),
    Stage("llvm", _llvm, lambda c: [(c.target.llvm_text(c.llvm_ir, c.entry), "ll")],
          "program"),
    Stage("object", _object, lambda c: [(c.target.assembly(c.native), "s")], "llvm_ir",
          aliases=("asm",)),
]


# ------------------------------------------------------------------------ names and runs

def stage_names() -> tuple[str, ...]:
    """The stage names, in pipeline order."""
    return tuple(s.name for s in STAGES)


def resolve_stages(text) -> tuple[str, ...]:
    """`"simplify,llvm"`, `"opt"` (an alias), `"all"` or an iterable of names -> stage names
    in pipeline order; unknown names raise ValueError listing the valid ones."""
    names = [s.strip() for s in text.split(",")] if isinstance(text, str) else list(text)
    names = [s for s in names if s]
    if "all" in names:
        return stage_names()
    by_name = {alias: s.name for s in STAGES for alias in (s.name,) + s.aliases}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        aliases = ", ".join(f"{a}={s.name}" for s in STAGES for a in s.aliases)
        raise ValueError(f"unknown stage(s) {', '.join(map(repr, unknown))}; expected a comma "
                         f"list of {', '.join(stage_names())} (or {aliases}) or 'all'")
    chosen = {by_name[n] for n in names}
    return tuple(n for n in stage_names() if n in chosen)


def split_at(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The stage names up to and including `name`, and those after it."""
    names = stage_names()
    k = names.index(name) + 1
    return names[:k], names[k:]


STAGE_RUNS: dict[str, int] = {}     # stage name -> times run in this process (tests read it)


def _dumped(stage: Stage) -> bool:
    return ir_dump.wants(stage.name) or any(ir_dump.wants(a) for a in stage.aliases)


def run(c: Compilation, names: tuple[str, ...] | None = None) -> Compilation:
    """Run the stages (all of `STAGES`, read at call time, or those named, in the order
    given) over `c`, verifying each graph and dumping each stage that is switched on."""
    resolve_stages(ir_dump.config().stages - {"all"})   # a misspelt GRAPHSPORE_DUMP fails here
    stages = {s.name: s for s in STAGES}
    chosen = STAGES if names is None else [stages[n] for n in resolve_stages_in_order(names)]
    for stage in chosen:
        if getattr(c, stage.needs) is None:
            raise ValueError(_missing(stage))
        STAGE_RUNS[stage.name] = STAGE_RUNS.get(stage.name, 0) + 1
        stage.run(c)
        if stage.graph:
            try:
                verify(c.graph)
            except Exception as exc:
                exc.add_note(f"(the graph was produced by the {stage.name!r} stage)")
                raise
        if _dumped(stage):
            for text, ext in stage.dump(c):
                ir_dump.write(c.name, stage.name, text, ext)
    return c


def run_on_graph(graph: Graph, names) -> tuple[Compilation, str]:
    """`graphspore opt FILE.mlir -p simplify,fuse`: run the named stages, in the order given,
    on a graph read from text; returns the compilation and the last stage's dump text."""
    names = resolve_stages_in_order(names)
    if not names:
        raise ValueError("no stages given")
    verify(graph)
    c = run(Compilation(graph=graph, name=graph.name), names)
    last = next(s for s in STAGES if s.name == names[-1])
    return c, last.dump(c)[0][0]


def _missing(stage: Stage) -> str:
    """Why `stage` cannot run: what it reads is not there yet."""
    if stage.needs == "source":
        return f"stage {stage.name!r} needs a Python function; a graph read from text starts " \
               f"after it"
    before = STAGES[[s.name for s in STAGES].index(stage.name) - 1].name
    return f"stage {stage.name!r} needs the {stage.needs} that {before!r} makes: run " \
           f"{before!r} before it (-p ...,{before},{stage.name})"


def resolve_stages_in_order(names) -> list[str]:
    """Names or aliases -> stage names, keeping the caller's order (`graphspore opt -p`)."""
    return [resolve_stages([n])[0] for n in names]


__all__ = ["Compilation", "JitTarget", "STAGES", "STAGE_RUNS", "Source", "Stage", "graph_stage", "run",
           "run_on_graph", "split_at",
           "resolve_stages", "resolve_stages_in_order", "stage_names", "symbol_for"]
