"""Python hooks on gradients, run while a compiled backward pass executes: `ops.HookBackward`
and `Cell.register_backward_hook`.

A hooked value is marked in the graph being built (`gs.grad_hook`, ir/ops/hooks.py); autodiff
turns the mark into a `gs.host_hook` whose native call (runtime/hook_callback.py) hands the
cotangent to a Python callback here, which calls the user's hook with Tensors and writes a
returned gradient back. Eagerly nothing is marked: graphspore's gradients are always compiled
(`grad` parses and compiles its function in PYNATIVE_MODE too), so hooks run in both modes,
where MindSpore runs them in PYNATIVE_MODE only.
"""
from __future__ import annotations

import threading

from .ir import ops as ir_ops
from .ir.core import EagerBuilder, Value, current_builder
from .ir.ops.hooks import grad_hook, register_hook, run_hook
from .runtime import hook_callback
from .tensor_type import Tensor

hook_callback.set_hook_runner(run_hook)
_unfinished = threading.local()     # `.calls`: Cell hooks whose output side ran, input not


def _finish(failed: bool) -> None:
    """After a run: a Cell hook whose input gradient was never computed (only the weights'
    gradients were asked for) still runs, with grad_output (None,); nothing to replace."""
    calls, _unfinished.calls = getattr(_unfinished, "calls", {}), {}
    for call in () if failed else calls.values():
        call()


hook_callback.add_finisher(_finish)


def _array(value, like):
    """A hook's returned gradient (a Tensor, an array or a 1-tuple of one) as an array."""
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"a gradient hook returned {len(value)} gradients for one input")
        value = value[0]
    array = value.asnumpy() if hasattr(value, "asnumpy") else value
    return array


def mark(x, callback):
    """`x` with its cotangent passed through `callback(grad array) -> array | None` when a
    compiled backward pass runs; `x` itself outside graph building."""
    if isinstance(current_builder(), EagerBuilder) or not isinstance(x, Value):
        return x
    if not x.dtype.is_float:
        return x                                   # no gradient flows through it
    hook = register_hook(callback)
    hook_callback.set_signature(hook, x.shape, x.dtype.np)
    return grad_hook(x, hook=hook)


def hook_backward(x, hook_fn):
    """`ops.HookBackward(hook_fn)(x)`: hook_fn((grad,)) -> new gradient or None."""
    def callback(array):
        replaced = hook_fn((Tensor(array),))
        return None if replaced is None else _array(replaced, array)
    return mark(ir_ops.as_value(x) if not isinstance(x, Tensor) else x, callback)


def cell_id(cell) -> str:
    """MindSpore's `cell_id` string: the class name and the object's id."""
    return f"{type(cell).__name__}({id(cell)})"


def run_with_backward_hooks(cell, hooks: dict, args: tuple, construct):
    """`construct(*args)` with the Cell's backward hooks around it: each hook gets
    `(cell_id, grad_input, grad_output)` (MindSpore 2.x: grad_input the gradient passed to
    the Cell's output, grad_output the one computed for its input, both 1-tuples) and may
    return a new grad_output. When the input's gradient is not computed (only the weights'
    are asked for) the hooks run after the backward pass with grad_output (None,)."""
    if isinstance(current_builder(), EagerBuilder):
        return construct(*args)
    if len(args) != 1 or not isinstance(args[0], Value):
        raise ValueError(f"{type(cell).__name__}.register_backward_hook: graphspore runs "
                         f"backward hooks on Cells called with one tensor input, got "
                         f"{len(args)} inputs")
    seen = {}

    def run_hooks(grad_output):
        for hook in tuple(hooks.values()):
            replaced = hook(cell_id(cell), (seen.get("grad"),), grad_output)
            if replaced is not None:
                grad_output = (replaced if isinstance(replaced, (tuple, list))
                               else (replaced,))
        return grad_output

    def at_output(array):
        seen["grad"] = Tensor(array.copy())
        calls = _unfinished.__dict__.setdefault("calls", {})
        calls[id(seen)] = lambda: run_hooks((None,))
        return None

    def at_input(array):
        getattr(_unfinished, "calls", {}).pop(id(seen), None)
        return _array(run_hooks((Tensor(array),)), array)

    out = construct(mark(args[0], at_input))
    if not isinstance(out, Value):
        raise ValueError(f"{type(cell).__name__}.register_backward_hook: graphspore runs "
                         f"backward hooks on Cells returning one tensor, got "
                         f"{type(out).__name__}")
    return mark(out, at_output)


__all__ = ["mark", "hook_backward", "run_with_backward_hooks", "cell_id"]
