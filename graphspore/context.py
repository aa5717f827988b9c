"""`set_context` / `get_context`: the execution mode and the few other global settings.

MindSpore's two modes keep their numeric values: `GRAPH_MODE = 0` compiles a Cell's
`construct` on its first call (per signature), `PYNATIVE_MODE = 1` (the default) runs it
line by line on the reference interpreter. Keys MindSpore has that do not change anything on
a CPU-only compiler (`device_id`, `max_call_depth`, `jit_config`, ...) are accepted and
stored; unknown keys raise, so a misspelt option never passes silently. `save_graphs`
turns on the IR dumps (see `graphspore.ir.dump`) into `save_graphs_path`.
"""
from __future__ import annotations

import os

GRAPH_MODE = 0
PYNATIVE_MODE = 1

# MindSpore's JIT syntax levels (`set_context(jit_syntax_level=ms.STRICT)`). graphspore has one
# syntax, its static-graph subset, so the level is validated and stored, not acted on.
STRICT, COMPATIBLE, LAX = 0, 1, 2

_DEFAULTS = {
    "mode": PYNATIVE_MODE,
    "device_target": "CPU",
    "device_id": 0,
    "save_graphs": False,
    "save_graphs_path": ".",
    "max_call_depth": 1000,
    "max_loop_iterations": 1 << 17,     # rows of a tensor while loop's gradient tape
    "max_loop_tape_bytes": 256 << 20,   # and the bytes its tapes may take
    "jit_config": None,
    "jit_level": None,
    "pynative_synchronize": False,
    "enable_graph_kernel": False,
    "graph_kernel_flags": None,
    "max_device_memory": None,
    "memory_optimize_level": None,
    "runtime_num_threads": None,
    "inter_op_parallel_num": None,
    "deterministic": "OFF",
    "compile_cache_path": None,
    "print_file_path": None,
    "check_bprop": False,
    "jit_syntax_level": LAX,
}
_context = dict(_DEFAULTS)


def set_context(**kwargs) -> None:
    """MindSpore's `set_context(mode=..., device_target="CPU", save_graphs=..., ...)`."""
    unknown = sorted(k for k in kwargs if k not in _DEFAULTS)
    if unknown:
        raise ValueError(f"set_context: unknown option(s) {', '.join(unknown)}; supported: "
                         f"{', '.join(sorted(_DEFAULTS))}")
    mode = kwargs.get("mode", _context["mode"])
    if mode not in (GRAPH_MODE, PYNATIVE_MODE):
        raise ValueError(f"set_context: mode must be GRAPH_MODE (0) or PYNATIVE_MODE (1), "
                         f"got {mode!r}")
    level = kwargs.get("jit_syntax_level", LAX)
    if isinstance(level, bool) or level not in (STRICT, COMPATIBLE, LAX):
        raise ValueError(f"set_context: jit_syntax_level must be mindspore.STRICT, COMPATIBLE "
                         f"or LAX, got {level!r}")
    target = kwargs.get("device_target", "CPU")
    if not isinstance(target, str) or target.upper() != "CPU":
        raise ValueError(f"set_context: graphspore compiles for the host CPU only; "
                         f"device_target={target!r} is not available")
    _context.update(kwargs)
    _context["device_target"] = "CPU"
    if "max_loop_iterations" in kwargs or "max_loop_tape_bytes" in kwargs:
        from .ir.passes.loop_vjp import LOOP_TAPE
        LOOP_TAPE["rows"] = int(_context["max_loop_iterations"])
        LOOP_TAPE["bytes"] = int(_context["max_loop_tape_bytes"])
    if "save_graphs" in kwargs or "save_graphs_path" in kwargs:
        _apply_dump_settings()


def get_context(key: str):
    """The value of one context option."""
    if key not in _context:
        raise ValueError(f"get_context: unknown option {key!r}")
    return _context[key]


def is_graph_mode() -> bool:
    return _context["mode"] == GRAPH_MODE


def _apply_dump_settings() -> None:
    """Point the IR dump hook at `save_graphs_path` when `save_graphs` is on."""
    from .ir import dump as ir_dump
    if _context["save_graphs"]:
        path = os.path.abspath(str(_context["save_graphs_path"]))
        ir_dump.configure(os.environ.get("GRAPHSPORE_DUMP") or "all", path)
    else:
        ir_dump.configure(None)          # back to whatever GRAPHSPORE_DUMP says


__all__ = ["set_context", "get_context", "GRAPH_MODE", "PYNATIVE_MODE", "is_graph_mode"]
