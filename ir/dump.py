"""The one debug switch: which compile stages are written to disk, and where.

The stages are those of `graphspore.pipeline.STAGES` (parse, autodiff, index_checks,
simplify, fuse, memory_plan, loops, llvm, object); this module only knows names: the pipeline
checks them, resolves its aliases (`graph`, `grad`, `opt`, `asm`) and asks `wants(name)`.

Switched on by the environment, read at every use (so `set_context` can change it):
    GRAPHSPORE_DUMP=parse,simplify   comma list of stage names, or `all`
    GRAPHSPORE_DUMP_DIR=some/dir     default ./graphspore_dump
or from code with `configure(stages, directory)`, which overrides the environment until
`configure(None)` hands control back to it.

Files are named `NN_<function>_<stage>.<ext>`. NN numbers compiled functions in compile order
within the process: every file of one compilation shares its NN, and a function compiled again
(a new signature) gets a new NN. The parse and autodiff stages are also written as Graphviz.
"""
from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from .core import Graph

DEFAULT_DIR = "graphspore_dump"


@dataclass(frozen=True, slots=True)
class DumpConfig:
    """The stage names to write (`"all"` among them: every stage) and their directory."""

    stages: frozenset
    directory: str

    @staticmethod
    def from_env(environ=os.environ) -> "DumpConfig":
        return DumpConfig(parse_stages(environ.get("GRAPHSPORE_DUMP", "")),
                          environ.get("GRAPHSPORE_DUMP_DIR") or DEFAULT_DIR)


def parse_stages(text) -> frozenset:
    """`"parse,simplify"` or `"all"` (or an iterable of names) -> the set of names given."""
    names = [s.strip() for s in text.split(",")] if isinstance(text, str) else list(text)
    return frozenset(s for s in names if s)


_lock = threading.Lock()
if hasattr(os, "register_at_fork"):  # a fork while another thread dumps must not deadlock
    os.register_at_fork(after_in_child=_lock._at_fork_reinit)
_configured: DumpConfig | None = None
_numbers: dict[str, int] = {}              # function name -> its current NN
_written: dict[str, set] = {}              # function name -> (stage, ext) written under NN
_counter = 0
RECORDED_STATS: list = []


def configure(stages, directory: str | None = None) -> None:
    """Set the stages (`None`: follow the environment again) and the output directory."""
    global _configured
    if stages is None:
        _configured = None
        return
    directory = directory or os.environ.get("GRAPHSPORE_DUMP_DIR") or DEFAULT_DIR
    _configured = DumpConfig(parse_stages(stages), str(directory))


def config() -> DumpConfig:
    """The configuration in force: the one from `configure`, else the environment's."""
    return _configured if _configured is not None else DumpConfig.from_env()


def wants(stage: str) -> bool:
    """Whether `stage` is dumped: callers skip producing expensive text (assembly) if not."""
    stages = config().stages
    return stage in stages or "all" in stages


def dump(func_name: str, stage: str, text: str, ext: str) -> Path | None:
    """Write `text` as `NN_<func>_<stage>.<ext>` if `stage` is on; return the path written."""
    return write(func_name, stage, text, ext) if wants(stage) else None


def write(func_name: str, stage: str, text: str, ext: str) -> Path:
    """Write `text` as `NN_<func>_<stage>.<ext>` in the configured directory (the caller has
    decided the stage is on: the pipeline also accepts a stage's older names)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", func_name) or "function"
    with _lock:
        number = _number_for(safe, (stage, ext))
    directory = Path(config().directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{number:02d}_{safe}_{stage}.{ext}"
    path.write_text(text)
    return path


dump_text = dump


def _number_for(func: str, key: tuple) -> int:
    """NN for `func`: a new one when the function is new or `key` was already written for
    its current NN (so the function is being compiled again)."""
    global _counter
    if func not in _numbers or key in _written[func]:
        _numbers[func] = _counter
        _written[func] = set()
        _counter += 1
    _written[func].add(key)
    return _numbers[func]


def dump_graph(func_name: str, stage: str, graph: Graph, dot: bool = False) -> Path | None:
    """Dump a graph as MLIR text (and as Graphviz when `dot`)."""
    if not wants(stage):
        return None
    from .printer import print_graph
    path = dump(func_name, stage, print_graph(graph), "mlir")
    if dot:
        dump(func_name, stage, to_dot(graph), "dot")
    return path


def record_stats(stats) -> None:
    """Keep one compilation's statistics (the CLI's summary table reads the compiler's list)."""
    RECORDED_STATS.append(stats)
    if len(RECORDED_STATS) > 1000:         # bounded, like compiler.STATS
        del RECORDED_STATS[:len(RECORDED_STATS) - 1000]


def to_dot(graph: Graph) -> str:
    """Graphviz text of a graph: inputs as ellipses (weights shaded), ops as boxes labelled
    with name, type and location (a region op's box also lists its regions), edges along
    operands, and the outputs and updates."""
    ids: dict = {}
    lines = [f'digraph "{_dot_escape(graph.name)}" {{', "  rankdir=TB;",
             '  node [fontname="monospace", fontsize=10];']
    for k, value in enumerate(graph.inputs):
        ids[value] = f"in{k}"
        style = ', style=filled, fillcolor="#dddddd"' if value in graph.bindings else ""
        label = f"%{value.name or k}\\n{value.type}"
        lines.append(f'  in{k} [shape=ellipse, label="{_dot_escape(label)}"{style}];')
    for k, op in enumerate(graph.ops):
        ids.update((r, f"op{k}") for r in op.results)
        types = ", ".join(str(r.type) for r in op.results)
        label = f"{op.name}\\n{types}"
        if op.result is not None and op.result.name:    # a region op may have no results
            label = f"%{op.result.name} = " + label
        for r, region in enumerate(op.regions):     # a region op is one node listing them
            label += (f"\\nregion #{r} {region.name}: {len(region.inputs)} args, "
                      f"{len(region.ops)} ops, {len(region.outputs)} yields")
        if op.loc is not None:
            label += f"\\n{os.path.basename(op.loc.file)}:{op.loc.line}"
        lines.append(f'  op{k} [shape=box, label="{_dot_escape(label)}"];')
        for operand in op.operands:
            lines.append(f"  {ids.get(operand, 'undefined')} -> op{k};")
    for k, value in enumerate(graph.outputs):
        lines.append(f'  out{k} [shape=plaintext, label="return #{k}"];')
        lines.append(f"  {ids.get(value, 'undefined')} -> out{k};")
    for weight, new in graph.updates:
        source, target = ids.get(new, "undefined"), ids.get(weight, "undefined")
        lines.append(f'  {source} -> {target} [style=dashed, label="assign"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_escape(text: str) -> str:
    # Keeps the `\n` line breaks written above; escapes quotes.
    return text.replace('"', '\\"')
