"""`vmap(fn, in_axes=0, out_axes=0)`: `fn` over a batch, as one graph (MindSpore's `ops.vmap`).

A call parses `fn` over one example (the arguments without their mapped axis) and batches that
graph (`ir.passes.vmap`): every op gets its batching rule, so the result is one graph over the
whole batch, compiled like any `jit` function, not a Python loop. Inside another compiled
function (or under `grad`) the batched graph is emitted into the caller's, so `grad(vmap(f))`,
`vmap(grad(f))`, `vmap(vmap(f))` and `jit(vmap(f))` compose.

`in_axes`: an int (the mapped axis of every Tensor argument), None (not mapped, shared by every
example), or a tuple with one entry per argument, nested like tuple arguments. `out_axes`: an
int or None for every output, or a tuple with one entry per element of a returned tuple.
Keyword arguments are not mapped. An output that does not depend on the batch is broadcast
along `out_axes` (as JAX does); `out_axes=None` requires the output not to depend on it.
"""
from __future__ import annotations

import functools

from .api import _Compiled, _in_graph, _name_of, build_graph
from .frontend.source import for_user
from .ir import Graph, GraphsporeError, TensorType
from .ir.core import Builder, building
from .ir.passes.vmap import VmapError, batch_graph, move_axis, with_batch


class VmapFunction(_Compiled):
    """`vmap(fn, in_axes, out_axes)`: callable eagerly (compiled per signature) and inside
    compiled functions (inlined)."""

    def __init__(self, fn, in_axes=0, out_axes=0):
        super().__init__()
        _check_axes_spec(in_axes, "in_axes")
        _check_axes_spec(out_axes, "out_axes")
        if not callable(fn):
            raise TypeError(f"vmap: fn must be callable, got {type(fn).__name__}")
        self.fn, self.in_axes, self.out_axes = fn, in_axes, out_axes
        functools.update_wrapper(self, fn, updated=())

    def __call__(self, *args, **kwargs):
        if _in_graph():
            return self.__gs_inline__(*args, **kwargs)
        try:
            return self._run(args, kwargs)
        except GraphsporeError as error:
            raise for_user(error) from None

    def _build(self, abstract_args: tuple, abstract_kwargs: dict):
        specs = _arg_specs(self.in_axes, abstract_args)
        leaves: list[tuple[TensorType, int | None]] = []
        examples = tuple(_example_arg(a, s, leaves, i) for i, (a, s) in
                         enumerate(zip(abstract_args, specs)))
        sizes = {t.shape[axis] for t, axis in leaves if axis is not None}
        if not sizes:
            raise VmapError("vmap: no argument is mapped (every in_axes entry is None or "
                            "refers to a non-Tensor argument)")
        if len(sizes) > 1:
            raise VmapError(f"vmap: mapped axes have different sizes {sorted(sizes)}")
        (size,) = sizes
        inner, tree = build_graph(self.fn, examples, abstract_kwargs)
        graph = Graph(f"vmap_{_name_of(self.fn)}", loc=inner.loc)
        builder = Builder(graph)
        with building(builder):
            batched = []
            for t, axis in leaves:
                value = builder.input(t)
                batched.append((value, False) if axis is None else (move_axis(value, axis, 0),
                                                                   True))
            for k in sorted(abstract_kwargs):
                batched += [(builder.input(t), False)
                            for t in _tensor_leaves(abstract_kwargs[k])]
            args = iter(batched)
            inputs = [(builder.bound_input(inner.bindings[v], v.type, v.name), False)
                      if v in inner.bindings else next(args) for v in inner.inputs]
            outputs = batch_graph(inner, inputs, size)
            axes = _output_axes(self.out_axes, tree, len(outputs))
            graph.outputs = [_place_output(out, axis, size) for out, axis in zip(outputs, axes)]
        builder.loc = None
        return graph, tree


def vmap(fn, in_axes=0, out_axes=0) -> VmapFunction:
    """`fn` mapped over axis `in_axes` of its arguments (see the module docstring)."""
    return VmapFunction(fn, in_axes, out_axes)


# ----------------------------------------------------------------------- axes specs

def _check_axes_spec(spec, what: str) -> None:
    if spec is None or (isinstance(spec, int) and not isinstance(spec, bool)):
        return
    if isinstance(spec, (tuple, list)):
        for s in spec:
            _check_axes_spec(s, what)
        return
    raise TypeError(f"vmap: {what} must be an int, None, or a tuple/list of them, got {spec!r}")


def _arg_specs(in_axes, args: tuple) -> tuple:
    if isinstance(in_axes, (tuple, list)):
        if len(in_axes) != len(args):
            raise VmapError(f"vmap: in_axes has {len(in_axes)} entries for {len(args)} "
                            "arguments")
        return tuple(in_axes)
    return (in_axes,) * len(args)


def _example_arg(abstract, spec, leaves: list, position: int):
    """The per-example abstract argument for `abstract` mapped by `spec`; appends one
    (batched type, axis or None) per Tensor leaf, in the frontend's input order."""
    if isinstance(abstract, TensorType):
        if isinstance(spec, (tuple, list)):
            raise VmapError(f"vmap: in_axes entry {spec!r} is a tuple but argument "
                            f"{position} is a Tensor")
        if spec is None:
            leaves.append((abstract, None))
            return abstract
        if not -abstract.rank <= spec < max(abstract.rank, 1) or abstract.rank == 0:
            raise VmapError(f"vmap: in_axes {spec} is out of range for argument {position} "
                            f"of type {abstract}")
        axis = spec % abstract.rank
        leaves.append((abstract, axis))
        shape = abstract.shape[:axis] + abstract.shape[axis + 1:]
        return TensorType(shape, abstract.dtype)
    if isinstance(abstract, (tuple, list)):
        specs = spec if isinstance(spec, (tuple, list)) else (spec,) * len(abstract)
        if len(specs) != len(abstract):
            raise VmapError(f"vmap: in_axes entry {spec!r} does not match argument "
                            f"{position}, a sequence of {len(abstract)}")
        return type(abstract)(_example_arg(a, s, leaves, position)
                              for a, s in zip(abstract, specs))
    if isinstance(spec, int):
        raise VmapError(f"vmap: argument {position} is {abstract!r}, not a Tensor; its "
                        "in_axes entry must be None")
    return abstract


def _tensor_leaves(abstract) -> list[TensorType]:
    if isinstance(abstract, TensorType):
        return [abstract]
    if isinstance(abstract, (tuple, list)):
        return [t for a in abstract for t in _tensor_leaves(a)]
    if isinstance(abstract, dict):
        return [t for a in abstract.values() for t in _tensor_leaves(a)]
    return []


def _output_axes(out_axes, tree, count: int) -> list:
    """One axis (or None) per flat output, following the output tree."""
    axes: list = [None] * count

    def assign(node, spec):
        if isinstance(node, int):
            if isinstance(spec, (tuple, list)):
                raise VmapError(f"vmap: out_axes entry {spec!r} is a tuple for a Tensor output")
            axes[node] = spec
        elif isinstance(node, tuple) and node[:1] == ("const",):
            return
        elif isinstance(node, (tuple, list)):
            specs = spec if isinstance(spec, (tuple, list)) else (spec,) * len(node)
            if len(specs) != len(node):
                raise VmapError(f"vmap: out_axes {spec!r} does not match an output of "
                                f"{len(node)} elements")
            for child, s in zip(node, specs):
                assign(child, s)
        elif isinstance(node, dict):
            for child in node.values():
                assign(child, spec)

    assign(tree, out_axes)
    return axes


def _place_output(out, axis, size: int):
    value, batched = out
    if axis is None:
        if batched:
            raise VmapError("vmap: out_axes is None for an output that depends on the batch")
        return value
    value = with_batch(out, size)
    if not -value.ndim <= axis < value.ndim:
        raise VmapError(f"vmap: out_axes {axis} is out of range for an output of rank "
                        f"{value.ndim}")
    return move_axis(value, 0, axis)


__all__ = ["vmap", "VmapFunction"]
