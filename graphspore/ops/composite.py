"""`mindspore.ops.composite`: higher-order functions. The gradient API (`grad`,
`value_and_grad`, `GradOperation`, `get_grad`) and type-dispatched functions mapped over
(nested) tuples (`MultitypeFuncGraph`, `HyperMap`, `Map`), as MindSpore's optimizers and many
user Cells are written.

All of them work eagerly and inside compiled functions. There the gradient constructors run
while parsing (`__gs_op__`), and `MultitypeFuncGraph`/`HyperMap`/`Map` route every call they
make back through the frontend (`__gs_call__(call, args, kwargs)`), so the functions they
apply are parsed and inlined like any other call. The gradient machinery itself lives in
graphspore/gradients.py, imported on first use (it pulls in the compiler).
"""
from __future__ import annotations

import numpy as np

from ..ir.core import Value, current_builder


def grad(fn, grad_position=0, weights=None, has_aux=False, return_ids=False):
    """The gradient function of `fn` (MindSpore 2.x `mindspore.grad`): gradients with
    respect to the arguments at `grad_position` (an int: that gradient alone; a tuple: a
    tuple) and/or the Parameters `weights`; `(inputs part, weights part)` when both are
    given. `has_aux` differentiates only the first output and returns the others beside the
    gradients; `return_ids` pairs each gradient with its position or Parameter name."""
    from .. import gradients
    return gradients.make(fn, grad_position, weights, has_aux, False, return_ids)


def value_and_grad(fn, grad_position=0, weights=None, has_aux=False, return_ids=False):
    """`(value, gradients)` function of `fn` (MindSpore 2.x `mindspore.value_and_grad`);
    the gradients as `grad` returns them."""
    from .. import gradients
    return gradients.make(fn, grad_position, weights, has_aux, True, return_ids)


class GradOperation:
    """MindSpore's classic higher-order gradient: `GradOperation(get_all, get_by_list,
    sens_param)(fn[, weights])` is the gradient function. It returns the first input's
    gradient (`()` without inputs); with `get_all` a tuple over every input; with
    `get_by_list` the weights' gradients (a tuple, or one gradient for one Parameter); with
    both `((input gradients), (weight gradients))`. With `sens_param` the output's
    sensitivity is the last argument (or `sens=`) instead of ones."""

    __gs_op__ = True          # called while parsing when used inside a compiled function

    def __init__(self, get_all=False, get_by_list=False, sens_param=False):
        for name, value in (("get_all", get_all), ("get_by_list", get_by_list),
                            ("sens_param", sens_param)):
            if not isinstance(value, bool):
                raise TypeError(f"For 'GradOperation', the '{name}' should be bool, but got "
                                f"{type(value).__name__}")
        self.get_all, self.get_by_list, self.sens_param = get_all, get_by_list, sens_param

    def __call__(self, fn, weights=None):
        if not callable(fn):
            raise TypeError(f"GradOperation: expected a function or Cell to differentiate, "
                            f"got {type(fn).__name__}")
        from .. import gradients
        return gradients.grad_operation(fn, weights, self.get_all, self.get_by_list,
                                        self.sens_param)

    def __repr__(self) -> str:
        return (f"GradOperation(get_all={self.get_all}, get_by_list={self.get_by_list}, "
                f"sens_param={self.sens_param})")


# Called, not inlined, by the frontend: inside a compiled function `grad(self.net)(x)` makes
# the gradient function while parsing, and get_grad picks from the gradients' Values.
grad.__gs_op__ = value_and_grad.__gs_op__ = True


def parameter_of(w):
    """The Parameter `w` stands for, also inside a compiled function (where reading one gives
    the Value of a weight input bound to it); TypeError for anything else."""
    if isinstance(w, Value):
        w = current_builder().graph.bindings.get(w, w)
    if not getattr(w, "__gs_parameter__", False):
        raise TypeError(f"weights must be Parameters, got {type(w).__name__}")
    return w


def get_grad(gradients, identifier):
    """The gradient for `identifier` (an argument position, or a Parameter) in the result of
    `grad(..., return_ids=True)`, eagerly or inside a compiled function. RuntimeError (as
    MindSpore) if it is not there."""
    if isinstance(identifier, bool) or not isinstance(identifier, int):
        try:
            identifier = parameter_of(identifier).name
        except TypeError:
            raise TypeError(f"get_grad: the identifier must be an int position or a "
                            f"Parameter, got {type(identifier).__name__}") from None
    found = _find_grad(gradients, identifier)
    if found is None:
        what = (f"position {identifier}" if isinstance(identifier, int)
                else f"parameter '{identifier}'")
        raise RuntimeError(f"get_grad: no gradient for {what} in the gradients (got ids "
                           f"{_ids(gradients)}); call grad(..., return_ids=True) with it in "
                           f"grad_position or weights")
    return found


get_grad.__gs_op__ = True


def _is_pair(x) -> bool:
    return (isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], (int, str))
            and not isinstance(x[0], bool))


def _find_grad(gradients, identifier):
    if _is_pair(gradients):
        if gradients[0] == identifier and type(gradients[0]) is type(identifier):
            return gradients[1]
        return None
    if isinstance(gradients, (tuple, list)):
        for g in gradients:
            found = _find_grad(g, identifier)
            if found is not None:
                return found
    return None


def _ids(gradients) -> list:
    if _is_pair(gradients):
        return [gradients[0]]
    if isinstance(gradients, (tuple, list)):
        return [i for g in gradients for i in _ids(g)]
    return []


# --------------------------------------------------------- type-dispatched functions

def _is_tensor(x) -> bool:
    return isinstance(x, Value) or (not isinstance(x, type) and
                                    bool(getattr(x, "__gs_tensor__", False)))


def _is_number(x) -> bool:
    return isinstance(x, (bool, int, float, np.number, np.bool_)) and not _is_tensor(x)


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


_TYPE_TESTS = {
    "Tensor": _is_tensor,
    "Number": _is_number,
    "Bool": lambda x: isinstance(x, (bool, np.bool_)),
    "Int": _is_int, "Int32": _is_int, "Int64": _is_int,
    "Float": lambda x: isinstance(x, (float, np.floating)),
    "Float32": lambda x: isinstance(x, (float, np.floating)),
    "Float64": lambda x: isinstance(x, (float, np.floating)),
    "Tuple": lambda x: isinstance(x, tuple),
    "List": lambda x: isinstance(x, list),
    "Dictionary": lambda x: isinstance(x, dict),
    "String": lambda x: isinstance(x, str),
    "None": lambda x: x is None,
    "Slice": lambda x: isinstance(x, slice),
    "Ellipsis": lambda x: x is Ellipsis,
    "Function": lambda x: callable(x) and not _is_tensor(x),
    "Func": lambda x: callable(x) and not _is_tensor(x),
    "TypeType": lambda x: type(x).__name__ == "DataType",
}


def _type_test(name):
    """The membership test for one of MindSpore's type names ("Tensor", "Number", "Tuple",
    "Tensor[Float32]", ...) or a graphspore dtype (a tensor of that dtype)."""
    if not isinstance(name, str):
        if type(name).__name__ != "DataType":
            raise TypeError(f"MultitypeFuncGraph.register takes type names or dtypes, got "
                            f"{type(name).__name__}")
        return _tensor_of(name.name)
    if name.startswith("Tensor[") and name.endswith("]"):
        return _tensor_of(name[len("Tensor["):-1])
    test = _TYPE_TESTS.get(name)
    if test is None:
        raise ValueError(f"MultitypeFuncGraph.register: unknown type name {name!r}; known: "
                         f"{', '.join(sorted(_TYPE_TESTS))}, Tensor[Float32], ...")
    return test


def _tensor_of(dtype_name: str):
    from ..dtype import from_ir

    def test(x):
        if not _is_tensor(x):
            return False
        ir = x.dtype if isinstance(x, Value) else x.ir_type.dtype
        return from_ir(ir).name == dtype_name
    return test


def _type_name(x) -> str:
    if _is_tensor(x):
        return "Tensor"
    return {bool: "Bool", int: "Int", float: "Float", tuple: "Tuple", list: "List",
            dict: "Dictionary", str: "String", type(None): "None"}.get(type(x), type(x).__name__)


def _direct(fn, *args, **kwargs):
    """Eager calls: `fn(*args)` as is (inside a graph the frontend's call takes its place)."""
    return fn(*args, **kwargs)


class MultitypeFuncGraph:
    """A function overloaded on its arguments' types: `@f.register("Tensor", "Number")`
    registers an implementation; a call runs the first registered one whose type names all
    match (the only one, if there is one). ValueError naming the types if none does."""

    def __init__(self, name, read_value=False):
        self.name, self.read_value = name, read_value
        self.entries: list[tuple[tuple, tuple, object]] = []

    def register(self, *type_names):
        tests = tuple(_type_test(n) for n in type_names)

        def deco(fn):
            self.entries.append((type_names, tests, fn))
            return fn
        return deco

    def __call__(self, *args, **kwargs):
        return self._select(args)(*args, **kwargs)

    def __gs_call__(self, call, args, kwargs):
        return call(self._select(args), *args, **kwargs)

    def _select(self, args):
        if len(self.entries) == 1:
            return self.entries[0][2]
        for _names, tests, fn in self.entries:
            if len(tests) == len(args) and all(t(a) for t, a in zip(tests, args)):
                return fn
        registered = "; ".join("(" + ", ".join(map(str, names)) + ")"
                               for names, _, _ in self.entries) or "nothing"
        raise ValueError(f"For 'MultitypeFuncGraph' {self.name!r}, no registered function "
                         f"matches the arguments ({', '.join(map(_type_name, args))}); "
                         f"registered: {registered}")

    def __repr__(self) -> str:
        return f"MultitypeFuncGraph({self.name!r})"


def _split_ops(fixed, args, who: str):
    if fixed is not None:
        return fixed, args
    if not args:
        raise TypeError(f"{who}: without `ops` the first argument is the function to apply")
    return args[0], args[1:]


def _check_lengths(seqs, who: str) -> None:
    lengths = {len(s) for s in seqs if isinstance(s, (tuple, list))}
    if len(lengths) > 1 or any(not isinstance(s, (tuple, list)) for s in seqs):
        shown = ", ".join(f"{type(s).__name__} of {len(s)}" if isinstance(s, (tuple, list))
                          else type(s).__name__ for s in seqs)
        raise ValueError(f"{who}: the sequences must have the same structure, got {shown}")


def _hyper_map(call, fn, seqs):
    if not seqs or not isinstance(seqs[0], (tuple, list)):
        return call(fn, *seqs)
    _check_lengths(seqs, "HyperMap")
    return tuple(_hyper_map(call, fn, items) for items in zip(*seqs))


class HyperMap:
    """Apply `ops` (or the first argument) to the leaves of (nested) tuples/lists, element by
    element across the arguments: `HyperMap()(f, (a, (b, c)), (x, (y, z)))` is
    `(f(a, x), (f(b, y), f(c, z)))`. `reverse` only orders the calls in MindSpore's graph
    mode; the result is the same, so it is accepted and ignored."""

    def __init__(self, ops=None, reverse=False):
        self.ops, self.reverse = ops, reverse

    def __call__(self, *args):
        return self.__gs_call__(_direct, args, {})

    def __gs_call__(self, call, args, kwargs):
        if kwargs:
            raise TypeError("HyperMap takes no keyword arguments")
        fn, seqs = _split_ops(self.ops, args, "HyperMap")
        return _hyper_map(call, fn, seqs)


class Map:
    """Apply `ops` (or the first argument) to the elements of tuples/lists, one level deep:
    `Map()(f, (a, b), (x, y))` is `(f(a, x), f(b, y))`."""

    def __init__(self, ops=None, reverse=False):
        self.ops, self.reverse = ops, reverse

    def __call__(self, *args):
        return self.__gs_call__(_direct, args, {})

    def __gs_call__(self, call, args, kwargs):
        if kwargs:
            raise TypeError("Map takes no keyword arguments")
        fn, seqs = _split_ops(self.ops, args, "Map")
        if not seqs or not isinstance(seqs[0], (tuple, list)):
            raise TypeError(f"Map: the arguments must be tuples or lists, got "
                            f"{', '.join(type(s).__name__ for s in seqs) or 'none'}")
        _check_lengths(seqs, "Map")
        return tuple(call(fn, *items) for items in zip(*seqs))


__all__ = ["grad", "value_and_grad", "GradOperation", "get_grad", "MultitypeFuncGraph",
           "HyperMap", "Map"]
