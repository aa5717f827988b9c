"""Stores in a compiled function: `x[i] = v`, `x[1:3] += v`, `self.attr = value`, `obj.x = v`.

- A subscript store on a tensor is a functional update (`setitem.setitem`): the new tensor is
  written back to the target expression, so `x[0][1] = v` rebinds `x`, and a store into a
  Parameter (`self.w[0] = v`) becomes the Parameter's in-place update, as in MindSpore.
- An attribute store of a tensor onto a Parameter attribute is that Parameter's update
  (`ops.assign`); any other attribute store is seen by later reads in the same graph (an
  overlay keyed by the object) and, for Python values, set on the object while parsing, so
  the object keeps it after the call (MindSpore's behaviour for Python attributes).
"""
from __future__ import annotations

import ast

from ..ir.core import GraphsporeError, Value
from . import guards
from .resolve import contains_value
from .setitem import setitem

_MISSING = object()


class Stores:
    """The store half of the translator. Expects `error`, `at`, `eval`, `frame`, `builder`,
    `imported`, `assign` and an `overlay` dict from the Translator."""

    def store_item(self, target: ast.Subscript, value) -> None:
        container, index = self.eval(target.value), self.eval(target.slice)
        if isinstance(container, Value):
            self.at(target)
            try:
                updated = setitem(container, index, value)
            except GraphsporeError:
                raise
            except (TypeError, ValueError, IndexError) as exc:
                self.error(target, str(exc), kind=_kind(exc))
            self.write_back(target.value, container, updated)
            return
        try:
            container[index] = value
        except Exception as exc:  # noqa: BLE001
            self.error(target, f"item assignment failed: {type(exc).__name__}: {exc}")

    def write_back(self, node: ast.expr, old: Value, new: Value) -> None:
        """Make the expression `node` (whose value was `old`) read as `new` from now on."""
        param = self._parameter_of(old)
        if param is not None:
            self.builder.assign(param, new)
        elif isinstance(node, (ast.Name, ast.Subscript, ast.Attribute)):
            self.assign(node, new)
        else:
            self.error(node, "this tensor expression cannot be assigned into",
                       "assign the tensor to a variable first, then index the variable")

    def _parameter_of(self, value: Value):
        """The Parameter whose current value in this graph is `value`, if any."""
        for obj_id, current in self.builder._bound.items():
            if current is value:
                for v, obj in self.builder.graph.bindings.items():
                    if id(obj) == obj_id:
                        return obj
        return None

    def store_attribute(self, target: ast.Attribute, value) -> None:
        obj = self.eval(target.value)
        if isinstance(obj, Value):
            self.error(target, f"tensors have no settable attribute '{target.attr}'")
        current = getattr(obj, target.attr, _MISSING)
        if getattr(current, "__gs_parameter__", False) and not isinstance(current, type):
            if not isinstance(value, Value):
                value = self.imported(value)
            if not isinstance(value, Value):
                self.error(target, f"the Parameter '{target.attr}' can only be assigned a "
                                   f"tensor, got {type(value).__name__}")
            self.at(target)
            try:
                self.builder.assign(current, value)
            except GraphsporeError as exc:
                self.error(target, exc.message)
            return
        self.overlay[(id(obj), target.attr)] = (obj, value)
        recorder = guards.current()
        if recorder is not None:     # the graph writes it: its later value is not a change
            recorder.note_store(obj, target.attr)
        if not contains_value(value):
            try:
                setattr(obj, target.attr, value)
            except Exception as exc:  # noqa: BLE001
                self.error(target, f"cannot set the attribute '{target.attr}': "
                                   f"{type(exc).__name__}: {exc}")

    def read_overlay(self, obj, name: str):
        """The value stored by `obj.name = ...` earlier in this graph, or _MISSING."""
        entry = self.overlay.get((id(obj), name))
        return _MISSING if entry is None or entry[0] is not obj else entry[1]


def _kind(exc: Exception):
    from ..ir.core import GraphsporeIndexError, GraphsporeTypeError
    if isinstance(exc, IndexError):
        return GraphsporeIndexError
    if isinstance(exc, TypeError):
        return GraphsporeTypeError
    return GraphsporeError


__all__ = ["Stores", "MISSING"]
MISSING = _MISSING
