"""`nn.Cell`: the unit of a network, holding Parameters and sub-Cells, run by `construct`.

Attribute assignment registers Parameters (`_params`) and sub-Cells (`_cells`) in insertion
order, as MindSpore does. Naming follows MindSpore 2.x: an unnamed Parameter takes its
attribute's name (`Parameter.name` defaults to "Parameter"); assigning a Cell as attribute
`fc1` renames every Parameter inside it to its attribute path (`fc1.weight`, and
`fc1.sub.bias` for deeper ones; an explicit name inside a sub-cell is replaced too).
`parameters_and_names()` walks the Cell itself first, then its sub-Cells depth-first in
registration order, yielding each Parameter once.

A call in PYNATIVE_MODE runs `construct` in Python, op by op on the reference interpreter.
In GRAPH_MODE, a call from outside any graph compiles the Cell (per argument signature) and
runs native code (`api.call_compiled`); a call while a graph is being built (a sub-Cell) is
inlined by the frontend, which reads `__gs_cell__`.
"""
from __future__ import annotations

import os
import sys
import threading
from collections import OrderedDict
from contextlib import contextmanager

from .. import context
from ..frontend.source import for_user, is_framework_file
from ..ir.core import EagerBuilder, GraphsporeError, Loc, current_builder
from ..tensor_type import Parameter, PARAMETER_NAME_DEFAULT

_state_version = 0
structure_version = 0   # bumped by changes every program depends on (hooks), not set_train
attribute_epoch = 0     # counts attribute assignments on any Cell (frontend/guards.py)
_recorders = threading.local()      # `.active`: the dicts recording training-flag reads


def state_version() -> int:
    """A counter bumped whenever a Cell's `training` flag changes: a cheap test that no flag
    changed since a program was last looked up."""
    return _state_version


@contextmanager
def training_reads():
    """Record the Cells whose `training` flag is read inside the block, as `{id: cell}`.

    The pipeline's parse stage runs under it: a compiled program depends on exactly the flags
    its parse read (a Dropout's, a BatchNorm's), so it is keyed on those and a `set_train`
    toggle of other Cells does not recompile it. Recorders nest (an inlined grad object's
    parse inside its caller's): a read is recorded by every active one."""
    active = _recorders.__dict__.setdefault("active", [])
    found: dict = {}
    active.append(found)
    try:
        yield found
    finally:
        active.remove(found)


class HookHandle:
    """What `register_forward_hook` returns: `handle.remove()` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks: OrderedDict):
        HookHandle._next_id += 1
        self.id, self._hooks = HookHandle._next_id, hooks

    def remove(self) -> None:
        if self._hooks.pop(self.id, None) is not None:
            _bump_state_version()


def _bump_state_version() -> None:
    """A change that makes every compiled program stale (a hook added or removed): bumps the
    structure version programs are keyed on, and the state version."""
    global _state_version, structure_version
    _state_version += 1
    structure_version += 1


def _at_caller(error: GraphsporeError, cell) -> GraphsporeError:
    """A graph error located in graphspore's own code (a Dense called directly in GRAPH_MODE
    or through jit: no user line is in the graph) moved to the user's line that called it;
    the framework line is kept in the message."""
    loc = error.loc
    if loc is None or not is_framework_file(loc.file):
        return error
    frame = sys._getframe(1)
    while frame is not None and is_framework_file(frame.f_code.co_filename):
        frame = frame.f_back
    if frame is None:
        return error
    positions = list(frame.f_code.co_positions())
    col = positions[frame.f_lasti // 2][2] if frame.f_lasti // 2 < len(positions) else 0
    label = (f"{type(cell).__name__}.construct" if getattr(cell, "__gs_cell__", False)
             else getattr(cell, "__name__", type(cell).__name__))
    error.message = f"{error.message} (in {label}, {os.path.basename(loc.file)}:{loc.line})"
    error.loc = Loc(frame.f_code.co_filename, frame.f_lineno, col or 0)
    error.args = (error._format(),)
    return error


class Cell:
    """Base class of networks: define `construct(self, *inputs)`; call the instance."""

    __gs_cell__ = True

    def __init__(self, auto_prefix=True, flags=None):
        object.__setattr__(self, "_params", OrderedDict())
        object.__setattr__(self, "_cells", OrderedDict())
        object.__setattr__(self, "_auto_prefix", bool(auto_prefix))
        object.__setattr__(self, "_training", False)
        object.__setattr__(self, "_cell_name", type(self).__name__)

    @property
    def training(self) -> bool:
        """Whether the Cell is in training mode (`set_train`); reads while a graph is being
        parsed are recorded (`training_reads`)."""
        for found in getattr(_recorders, "active", ()):
            found[id(self)] = self
        return self.__dict__.get("_training", False)

    @training.setter
    def training(self, mode) -> None:
        global _state_version
        if self.__dict__.get("_training") != bool(mode):
            object.__setattr__(self, "_training", bool(mode))
            _state_version += 1

    # -------------------------------------------------------------------- registration
    def __setattr__(self, name: str, value) -> None:
        global attribute_epoch
        attribute_epoch += 1          # compiled programs re-check the Cell attributes they read
        params = self.__dict__.get("_params")
        if params is None:
            if isinstance(value, (Parameter, Cell)):
                raise AttributeError(f"{type(self).__name__}: assign Parameters and Cells "
                                     f"after calling super().__init__()")
            object.__setattr__(self, name, value)
            return
        cells = self.__dict__["_cells"]
        if isinstance(value, Parameter):
            cells.pop(name, None)
            self.__dict__.pop(name, None)
            self.insert_param_to_cell(name, value)
        elif isinstance(value, Cell):
            params.pop(name, None)
            self.__dict__.pop(name, None)
            self.insert_child_to_cell(name, value)
        elif value is None and (name in params or name in cells):
            (params if name in params else cells)[name] = None
        else:
            params.pop(name, None)
            cells.pop(name, None)
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        # Only called when normal lookup fails: Parameters and Cells live in the registries.
        registries = self.__dict__
        for registry in ("_params", "_cells"):
            table = registries.get(registry)
            if table is not None and name in table:
                return table[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        global attribute_epoch
        attribute_epoch += 1
        if name in self._params:
            del self._params[name]
        elif name in self._cells:
            del self._cells[name]
        else:
            object.__delattr__(self, name)

    def insert_param_to_cell(self, param_name: str, param, check_name_contain_dot=True):
        """Register `param` as attribute `param_name` (an unnamed one takes that name)."""
        if not param_name or (check_name_contain_dot and "." in param_name):
            raise KeyError(f"invalid parameter name {param_name!r}")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"insert_param_to_cell: expected a Parameter, got "
                            f"{type(param).__name__}")
        if isinstance(param, Parameter) and param.name == PARAMETER_NAME_DEFAULT:
            param.name = param_name
        self._params[param_name] = param

    def insert_child_to_cell(self, child_name: str, child_cell) -> None:
        """Register `child_cell` as sub-cell `child_name`, prefixing its Parameters' names."""
        if not child_name or "." in child_name:
            raise KeyError(f"invalid cell name {child_name!r}")
        if child_cell is not None and not isinstance(child_cell, Cell):
            raise TypeError(f"insert_child_to_cell: expected a Cell, got "
                            f"{type(child_cell).__name__}")
        self._cells[child_name] = child_cell
        if child_cell is not None and self._auto_prefix:
            child_cell.update_parameters_name(child_name + ".")

    def update_parameters_name(self, prefix: str = "", recurse: bool = True) -> None:
        """Rename every Parameter to `prefix` + its attribute path in this Cell."""
        for name, param in self.parameters_and_names(expand=recurse):
            param.name = prefix + name

    # ------------------------------------------------------------------------ queries
    def cells_and_names(self, cells=None, name_prefix: str = ""):
        """(path, cell) for this Cell and every sub-Cell, depth-first, each cell once."""
        seen = cells if cells is not None else set()
        if id(self) in seen:
            return
        seen.add(id(self))
        yield name_prefix, self
        for name, cell in self._cells.items():
            if cell is not None:
                path = f"{name_prefix}.{name}" if name_prefix else name
                yield from cell.cells_and_names(seen, path)

    def parameters_and_names(self, name_prefix: str = "", expand: bool = True):
        """(attribute path, Parameter): own Parameters first, then sub-Cells' in order."""
        cells = self.cells_and_names(name_prefix=name_prefix) if expand else [
            (name_prefix, self)]
        seen = set()
        for cell_name, cell in cells:
            for name, param in cell._params.items():
                if param is not None and id(param) not in seen:
                    seen.add(id(param))
                    yield (f"{cell_name}.{name}" if cell_name else name), param

    def get_parameters(self, expand: bool = True):
        for _, param in self.parameters_and_names(expand=expand):
            yield param

    def trainable_params(self, recurse: bool = True) -> list:
        """Parameters with `requires_grad=True`, in `parameters_and_names` order."""
        return [p for p in self.get_parameters(expand=recurse) if p.requires_grad]

    def untrainable_params(self, recurse: bool = True) -> list:
        return [p for p in self.get_parameters(expand=recurse) if not p.requires_grad]

    # Inside construct they run while parsing (a list of Parameters becomes their weight
    # inputs), e.g. `grad(self.net, None, self.net.trainable_params())(x)`.
    trainable_params.__gs_op__ = untrainable_params.__gs_op__ = True

    def parameters_dict(self, recurse: bool = True) -> OrderedDict:
        """Parameters keyed by their names."""
        return OrderedDict((p.name, p) for p in self.get_parameters(expand=recurse))

    def name_cells(self) -> OrderedDict:
        """The direct sub-Cells by attribute name."""
        return OrderedDict((n, c) for n, c in self._cells.items() if c is not None)

    def cells(self):
        return self.name_cells().values()

    # ------------------------------------------------------------------- train/eval
    def set_train(self, mode: bool = True) -> "Cell":
        """Set the `training` flag of this Cell and every sub-Cell."""
        for _, cell in self.cells_and_names():
            object.__setattr__(cell, "training", bool(mode))    # the property's setter
        return self

    def set_grad(self, requires_grad: bool = True) -> "Cell":
        """Accepted for MindSpore compatibility: gradients are taken by `grad` objects."""
        object.__setattr__(self, "requires_grad", bool(requires_grad))
        return self

    @property
    def phase(self) -> str:
        return "train" if self.training else "predict"

    def to_float(self, dst_type) -> "Cell":
        """MindSpore's mixed precision flag on this Cell and every sub-Cell: their float
        inputs and Parameters are cast to `dst_type` (float16, float32 or bfloat16) where
        `construct` reads them, so their ops compute in it (frontend/mixed_precision.py);
        outputs stay in `dst_type`. A flagged Cell called eagerly runs compiled. Returns
        self."""
        from .. import dtype as dtypes
        allowed = [d for d in (dtypes.float16, dtypes.float32,
                               getattr(dtypes, "__dict__", {}).get("bfloat16")) if d is not None]
        if not any(dst_type is d for d in allowed):
            raise ValueError(f"{type(self).__name__}.to_float: dst_type must be one of "
                             f"{', '.join(map(str, allowed))}, got {dst_type!r}")
        for _, cell in self.cells_and_names():
            object.__setattr__(cell, "_mixed_precision_type", dst_type)
        _bump_state_version()          # compiled programs that inlined these Cells are stale
        return self

    # -------------------------------------------------------------------------- calls
    def construct(self, *inputs, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define construct()")

    def set_inputs(self, *inputs, **kwargs):
        """Declare the inputs (MindSpore's dynamic-shape `set_inputs`): Tensors or shape
        placeholders `Tensor(shape=[None, 3], dtype=...)`; each call is checked against them
        (graphspore compiles each concrete shape once)."""
        if kwargs:
            raise TypeError("set_inputs: keyword inputs are not supported; declare them "
                            "positionally")
        object.__setattr__(self, "_gs_declared_inputs", tuple(inputs))

    def get_inputs(self):
        """The inputs given to `set_inputs` (None if it was not called)."""
        return self.__dict__.get("_gs_declared_inputs")

    def __call__(self, *args, **kwargs):
        declared = self.__dict__.get("_gs_declared_inputs")
        if declared is not None:
            from ..input_signature import check_inputs
            check_inputs(self, declared, args)
        if ((context.get_context("mode") == context.GRAPH_MODE
             or self.__dict__.get("_mixed_precision_type") is not None)
                and isinstance(current_builder(), EagerBuilder)):
            from ..api import call_compiled
            try:
                return call_compiled(self, args, kwargs)
            except GraphsporeError as error:   # cut the frontend's frames from the traceback
                raise for_user(_at_caller(error, self)) from None
        hooks = self.__dict__.get("_forward_pre_hooks")
        for hook in tuple(hooks.values()) if hooks else ():
            replaced = hook(self, args)
            if replaced is not None:
                args = tuple(replaced) if isinstance(replaced, tuple) else (replaced,)
        backward_hooks = self.__dict__.get("_backward_hooks")
        if backward_hooks:
            from ..gradient_hooks import run_with_backward_hooks
            out = run_with_backward_hooks(self, backward_hooks, args,
                                          lambda *inputs: self.construct(*inputs, **kwargs))
        else:
            out = self.construct(*args, **kwargs)
        hooks = self.__dict__.get("_forward_hooks")
        for hook in tuple(hooks.values()) if hooks else ():
            replaced = hook(self, args, out)
            if replaced is not None:
                out = replaced
        return out

    # -------------------------------------------------------------------------- hooks
    def register_forward_pre_hook(self, hook_fn) -> "HookHandle":
        """`hook_fn(cell, inputs)` runs before `construct`; a non-None result replaces the
        inputs. Runs eagerly and inside compiled functions (inlined with the Cell)."""
        return self._add_hook("_forward_pre_hooks", hook_fn)

    def register_forward_hook(self, hook_fn) -> "HookHandle":
        """`hook_fn(cell, inputs, output)` runs after `construct`; a non-None result replaces
        the output. Runs eagerly and inside compiled functions (inlined with the Cell)."""
        return self._add_hook("_forward_hooks", hook_fn)

    def register_backward_hook(self, hook_fn) -> "HookHandle":
        """`hook_fn(cell_id, grad_input, grad_output)` runs when a gradient through this Cell
        is computed (MindSpore 2.x: `grad_input` the gradient passed to the Cell's output,
        `grad_output` the one computed for its input, 1-tuples of Tensors); a non-None result
        replaces `grad_output`. Runs inside the compiled backward pass, in both modes; the
        Cell must take one tensor and return one (graphspore/gradient_hooks.py)."""
        return self._add_hook("_backward_hooks", hook_fn)

    def _add_hook(self, table: str, hook_fn) -> "HookHandle":
        if not callable(hook_fn):
            raise TypeError(f"{table.strip('_')}: hook_fn must be callable, got "
                            f"{type(hook_fn).__name__}")
        hooks = self.__dict__.get(table)
        if hooks is None:
            hooks = OrderedDict()
            object.__setattr__(self, table, hooks)
        handle = HookHandle(hooks)
        hooks[handle.id] = hook_fn
        _bump_state_version()          # compiled programs that inlined this Cell are stale
        return handle

    def extend_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        """MindSpore 2.10's layout: `Name(extra)` for a leaf; a composite lists its
        `extend_repr` lines and `(name): child` lines indented, then `)` on its own line."""
        extra = self.extend_repr()
        lines = extra.split("\n") if extra else []
        lines += [f"({name}): " + repr(cell).replace("\n", "\n  ")
                  for name, cell in self.name_cells().items()]
        if not self.name_cells():
            return f"{type(self).__name__}({extra})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


__all__ = ["Cell", "HookHandle", "state_version", "training_reads"]
