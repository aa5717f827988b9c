"""Eager execution of graph code: the `gs_op` decorator that turns a function over IR values
into a public op taking and returning Tensors.

Every public op (`graphspore.ops`, Tensor methods and operators) is written once, as graph
code that emits IR ops into the current builder. Inside a graph being built, the frontend
calls it with Values. Outside, the current builder is the EagerBuilder, which runs each op's
numpy reference at once: `gs_op` converts Tensor arguments (also inside tuples and lists) to
eager Values, calls the function, and wraps the resulting Values back as Tensors. Nested
public ops (one op function calling another) convert only at the outermost call. Errors raised
while an eager op runs are re-raised as GraphsporeError pointing at the user's line, as an
instance of the original class too (so `except ValueError` keeps working).
"""
from __future__ import annotations

import functools
import os
import sys
import threading

from .frontend import operators as methods
from .ir import core as ir_core, ops as ir_ops
from .ir.core import EagerBuilder, GraphsporeError, Loc, Value, current_builder, eager_value
from .ir.types import DType

ir_core.register_package_dir(__file__)
_FRAMEWORK_DIRS = tuple(os.path.dirname(os.path.abspath(m.__file__)) + os.sep
                        for m in (sys.modules[__package__], ir_core, methods))


def _wrap(array):
    from .tensor_type import Tensor          # tensor.py builds on this module
    return Tensor._from_array(array)


_state = threading.local()


def _values(x, eager: bool):
    """Tensors (also inside tuples/lists) as IR values: eager ones, or in a graph a bound
    weight input (Parameter) or a constant (Tensor)."""
    if getattr(x, "__gs_tensor__", False) and not isinstance(x, type):
        if eager:
            return eager_value(x._array)
        if getattr(x, "__gs_parameter__", False):
            return current_builder().bound_input(x, x.ir_type, x.name)
        return ir_ops.constant(x._array, DType.from_numpy(x._array.dtype))
    if type(x) in (tuple, list):
        return type(x)(_values(v, eager) for v in x)
    return x


def _tensors(x):
    """Eager values (also inside tuples/lists) wrapped back as Tensors."""
    if isinstance(x, Value):
        return _wrap(x.data)
    if type(x) in (tuple, list):
        return type(x)(_tensors(v) for v in x)
    return x


def gs_op(fn):
    """Make `fn` (graph code over IR Values) a public op: marked `__gs_op__` so the frontend
    calls it with Values; in eager mode it takes Tensors, runs on the eager builder and
    returns Tensors. Errors come out as GraphsporeError at the user's line."""
    @functools.wraps(fn)
    def op_function(*args, **kwargs):
        if not isinstance(current_builder(), EagerBuilder):
            return fn(*_values(args, False), **{k: _values(v, False) for k, v in kwargs.items()})
        args = _values(args, True)
        kwargs = {k: _values(v, True) for k, v in kwargs.items()}
        depth = getattr(_state, "depth", 0)
        if depth:                                     # called from inside another eager op
            return fn(*args, **kwargs)
        _state.depth = 1
        try:
            return _tensors(fn(*args, **kwargs))
        except GraphsporeError as exc:
            raise _user_error(exc, exc.message, exc.hint) from None
        except (ValueError, TypeError, IndexError, LookupError) as exc:
            raise _user_error(exc, str(exc), None) from None
        finally:
            _state.depth = 0
    op_function.__gs_op__ = True
    return op_function


def _user_error(exc: Exception, message: str, hint) -> GraphsporeError:
    """A GraphsporeError at the user's line that is also an instance of the original
    error's class (ValueError, TypeError, ...) so `except ValueError` keeps working."""
    base = exc.__context__ if isinstance(exc, GraphsporeError) else exc
    base_class = type(base) if isinstance(base, (ValueError, TypeError, LookupError)) else None
    cls = GraphsporeError if base_class is None else ir_core.error_class(base_class)
    return cls(message, _user_frame_loc(), hint)


def _user_frame_loc() -> Loc | None:
    """The innermost frame outside graphspore, with the column of the call being made."""
    frame = sys._getframe(2)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
            _FRAMEWORK_DIRS):
        frame = frame.f_back
    if frame is None:
        return None
    col = 0
    positions = list(frame.f_code.co_positions())
    if 0 <= frame.f_lasti // 2 < len(positions):
        line, _, start, _ = positions[frame.f_lasti // 2]
        col = start if start is not None and line == frame.f_lineno else 0
    return Loc(frame.f_code.co_filename, frame.f_lineno, col)


__all__ = ["gs_op"]
