"""Lowering of region kernels: `gs.if` -> `L.If`, `gs.while` -> `L.While`, `gs.for` -> `L.For`
around the kernels of their regions (see `fuse_regions` for how region values are homed).

Each region is lowered by a child `Lowerer` sharing the program's buffers and kernel list;
its workspace values live in the region op's scratch block (`memory_plan`), after the
block's header (the loop flag at +0, the counter at +64). Region kernels are named
`<op kernel>_<region>_<kernel>`, so names stay unique through nesting.
"""
from __future__ import annotations

from ..ir.types import DType
from . import loops as L
from .memory_plan import REGION_HEADER

_NAMES = {"gs.if": ("then", "else"), "gs.while": ("cond", "body"), "gs.for": ("body",)}


def lower_region(lw, k) -> list:
    """The entry steps of region kernel `k` in lowerer `lw`."""
    from .lower_to_loops import Lowerer
    op = k.ops[0]
    base = lw.ws_base + lw.plan.scratch[k.name]
    plans = lw.plan.regions[k.name]
    operands = [lw.buffer_of(v) for v in op.operands]
    results = [lw.buffer_of(r) for r in op.results]

    def lowered(index: int, inputs: list, outputs: list) -> list:
        io = {("in", i): b for i, b in enumerate(inputs)}
        io.update({("out", j): b for j, b in enumerate(outputs)})
        child = Lowerer(k.regions[index], plans[index], lw.entry, parent=lw, io=io,
                        ws_base=base + REGION_HEADER,
                        prefix=f"{lw.prefix}{k.name}_{_NAMES[op.name][index]}_")
        return child.steps()

    return REGION_LOWERINGS[op.name](lw, k, op, base, operands, results, lowered)


def _lower_if(lw, k, op, base, operands, results, lowered) -> list:
    return [L.If(operands[0], lowered(0, operands[1:], results),
                 lowered(1, operands[1:], results))]


def _lower_loop(lw, k, op, base, operands, results, lowered) -> list:
    """gs.while and gs.for: copy the inits into the carried slots (the results), then loop."""
    carried = op.attrs["carried"]
    first = 0 if op.name == "gs.while" else 1
    slots = results + operands[first + carried:]
    steps = [_copy(lw, f"{lw.prefix}{k.name}_init_{j}", operands[first + j], results[j])
             for j in range(carried) if operands[first + j] is not results[j]]
    if op.name == "gs.while":
        flag = _scratch(lw, f"{k.name}_flag", DType.bool, base)
        steps.append(L.While(lowered(0, slots, [flag]), flag, lowered(1, slots, [])))
    else:
        index = _scratch(lw, f"{k.name}_index", DType.i64, base + 64)
        steps.append(L.For(operands[0], index, lowered(0, [index] + slots, []),
                           bool(op.attrs.get("reverse", False))))
    return steps


REGION_LOWERINGS = {"gs.if": _lower_if, "gs.while": _lower_loop, "gs.for": _lower_loop}


def _scratch(lw, name: str, dtype: DType, offset: int) -> L.Buffer:
    buffer = L.Buffer(_unique(lw, name), (), dtype, "ws", offset=offset)
    lw.buffers.append(buffer)
    return buffer


def _unique(lw, base: str) -> str:
    name, n = base, 0
    while name in lw.names:
        n += 1
        name = f"{base}_{n}"
    lw.names.add(name)
    return name


def _copy(lw, name: str, source: L.Buffer, target: L.Buffer) -> L.Kernel:
    """A kernel copying `source` into `target` (a loop's init into its carried slot)."""
    body = L.nest(target.shape, "i", lambda ix: [L.Store(
        target, L.linear(ix, target.shape), L.Load(source, L.linear(ix, target.shape)))])
    from .lower_to_loops import _buffers_in
    kernel = L.Kernel(name, _buffers_in(body), body)
    lw.kernels.append(kernel)
    return kernel
