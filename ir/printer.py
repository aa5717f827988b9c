"""MLIR text for graphs: the generic op form in the `gs` dialect, one line per op.

```
func.func @loss(%x: tensor<4x3xf32>, %w: tensor<3x2xf32> {gs.param = "w"}) -> (tensor<f32>) {
  %0 = "gs.matmul"(%x, %w) {transpose_a = false, transpose_b = false} : (tensor<4x3xf32>, \
tensor<3x2xf32>) -> tensor<4x2xf32> loc("train.py":12:8)
  "gs.assign"(%w, %w_1) : (tensor<3x2xf32>, tensor<3x2xf32>) -> ()
  return %l : tensor<f32>
} loc("train.py":10:0)
```

One printer serves every stage. The text is accepted by `mlir-opt-22 --allow-unregistered-dialect`
and by xdsl's parser (tests check both):
- SSA names come from the values' name hints (the user's variables), sanitised to MLIR's
  suffix-id characters and made unique (`%z`, `%z_1`); unnamed values are numbered.
- Weight inputs carry the argument attribute `{gs.param = "<name>"}`; updates are printed as
  `"gs.assign"(%weight, %new) : (T, T) -> ()` just before `return` (an op with no result,
  which is not an `OpDef`: updates live in `graph.updates`, not in the op list).
- Region ops (`gs.if`, `gs.while`, `gs.for`) use the generic region form: `%r:2 = "gs.if"(%p,
  %x) ({ ^bb0(%x_1: T): ... "gs.yield"(%a) : (T) -> () }, { ... }) : (...) -> (T, T)`; the
  results of a multi-result op are used as `%r#0`; one namer serves every region, so names
  are unique across regions (MLIR rejects a redefinition).
- Floats are printed so that they parse back to the same bits: the shortest round-trip
  decimal for finite values, MLIR's hexadecimal bit form (`0x7F800000`) for inf and nan.
"""
from __future__ import annotations

import math
import re
import struct

import numpy as np

from .core import Graph, Loc, Value
from .types import DType, TensorType

_SUFFIX_ID = re.compile(r"[A-Za-z$._-][A-Za-z0-9$._-]*")
_UNKNOWN = "loc(unknown)"


def print_graph(graph: Graph, name: str | None = None) -> str:
    """The graph as an MLIR `func.func` named `name` (default: the graph's name)."""
    names = _Namer()
    args = []
    for value in graph.inputs:
        text = f"{names.define(value)}: {value.type}"
        if value in graph.bindings:
            param = getattr(graph.bindings[value], "name", None) or value.name or "param"
            text += f" {{gs.param = {_string(str(param))}}}"
        args.append(text)
    result_types = ", ".join(str(v.type) for v in graph.outputs)
    func_name = _symbol(name or graph.name)
    lines = [f"func.func @{func_name}({', '.join(args)}) -> ({result_types}) {{"]
    _print_ops(graph, names, "  ", lines)
    for weight, new in graph.updates:
        lines.append(f'  "gs.assign"({names.use(weight)}, {names.use(new)}) : '
                     f'({weight.type}, {new.type}) -> ()')
    if graph.outputs:
        outs = ", ".join(names.use(v) for v in graph.outputs)
        lines.append(f"  return {outs} : {result_types}")
    else:
        lines.append("  return")
    loc = graph.loc.mlir() if isinstance(graph.loc, Loc) else _UNKNOWN
    lines.append(f"}} {loc}")
    return "\n".join(lines) + "\n"


def _print_ops(graph: Graph, names: "_Namer", pad: str, lines: list[str]) -> None:
    for op in graph.ops:
        operands = ", ".join(names.use(v) for v in op.operands)
        attrs = print_attrs(op.attrs)
        in_types = ", ".join(str(v.type) for v in op.operands)
        loc = op.loc.mlir() if op.loc is not None else _UNKNOWN
        if not op.regions:
            result = names.define(op.result)
            lines.append(f'{pad}{result} = "{op.name}"({operands}){attrs} : ({in_types}) -> '
                         f'{op.result.type} {loc}')
            continue
        result = names.define_results(op.results)
        lines.append(f'{pad}{result}"{op.name}"({operands}) ({{')
        for k, region in enumerate(op.regions):
            if k:
                lines.append(f"{pad}}}, {{")
            _print_region(region, names, pad + "  ", lines)
        out_types = ", ".join(str(v.type) for v in op.results)
        lines.append(f"{pad}}}){attrs} : ({in_types}) -> ({out_types}) {loc}")


def _print_region(region: Graph, names: "_Namer", pad: str, lines: list[str]) -> None:
    """One region: the entry block `^bb0(args)`, its ops, and `"gs.yield"(outputs)`."""
    if region.inputs:
        args = ", ".join(f"{names.define(v)}: {v.type}" for v in region.inputs)
        lines.append(f"{pad[:-2]}^bb0({args}):")
    _print_ops(region, names, pad, lines)
    outs = ", ".join(names.use(v) for v in region.outputs)
    types = ", ".join(str(v.type) for v in region.outputs)
    lines.append(f'{pad}"gs.yield"({outs}) : ({types}) -> ()')


class _Namer:
    """SSA names: sanitised hints made unique, numbers for values without a hint."""

    def __init__(self):
        self.names: dict[Value, str] = {}
        self.taken: set[str] = set()
        self.counter = 0

    def define(self, value: Value) -> str:
        base = _sanitise(value.name) if value.name else None
        if base is None:
            while str(self.counter) in self.taken:
                self.counter += 1
            name = str(self.counter)
            self.counter += 1
        else:
            name, k = base, 1
            while name in self.taken:
                name = f"{base}_{k}"
                k += 1
        self.taken.add(name)
        self.names[value] = "%" + name
        return self.names[value]

    def define_results(self, results) -> str:
        """`%r = `, `%r:2 = ` (uses are `%r#0`, `%r#1`) or nothing for no results."""
        if not results:
            return ""
        if len(results) == 1:
            return self.define(results[0]) + " = "
        head = self.define(results[0])
        for k, value in enumerate(results):
            self.names[value] = f"{head}#{k}"
        return f"{head}:{len(results)} = "

    def use(self, value: Value) -> str:
        # An undefined value is still printed (the verifier reports it); the name makes the
        # problem visible in a dump instead of raising a KeyError here.
        return self.names.get(value) or f"%undefined_{value.name or id(value)}"


def _sanitise(hint: str) -> str | None:
    """An MLIR suffix-id from a name hint: invalid characters become `_`, and a hint starting
    with a digit gets a leading `_` (MLIR allows a leading digit only in all-digit names, which
    are left to unnamed values)."""
    text = re.sub(r"[^A-Za-z0-9$._-]", "_", str(hint))
    if not text:
        return None
    if not _SUFFIX_ID.fullmatch(text):
        text = "_" + text      # a leading digit: `%0` is reserved for unnamed values
    return text


def _symbol(name: str) -> str:
    """A function name: a bare identifier if possible, else a quoted string."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$.]*", name):
        return name
    return _string(name)


# ---------------------------------------------------------------------------- attributes

def print_attrs(attrs: dict) -> str:
    """` {a = 1 : i64, b = true}` in key order, or the empty string when there are none."""
    if not attrs:
        return ""
    items = ", ".join(f"{_attr_name(k)} = {print_attr(v)}" for k, v in attrs.items())
    return f" {{{items}}}"


def _attr_name(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$.]*", key) else _string(key)


def print_attr(value) -> str:
    """One attribute value in MLIR syntax (see the module docstring for the mapping)."""
    if value is None:
        return "unit"
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return f"{int(value)} : i64"
    if isinstance(value, (float, np.floating)):
        return f"{_float(float(value), DType.f64)} : f64"
    if isinstance(value, DType):
        return value.mlir
    if isinstance(value, TensorType):
        return str(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, np.ndarray):
        return print_dense(value)
    if isinstance(value, (tuple, list)):
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
               for v in value):
            return f"array<i64: {', '.join(str(int(v)) for v in value)}>" if value \
                else "array<i64>"
        return "[" + ", ".join(print_attr(v) for v in value) + "]"
    raise TypeError(f"cannot print attribute {value!r} of type {type(value).__name__}")


def print_dense(array: np.ndarray) -> str:
    """`dense<...> : tensor<...>`; the splat form `dense<1.0>` when every element is equal."""
    dtype = DType.from_numpy(array.dtype)
    array = np.asarray(array, dtype=dtype.np)
    ttype = TensorType(array.shape, dtype)
    if array.size == 0:
        return f"dense<> : {ttype}"
    flat = array.reshape(-1)
    if array.ndim == 0 or _all_equal(flat):
        return f"dense<{_element(flat[0], dtype)}> : {ttype}"
    return f"dense<{_nested(array, dtype)}> : {ttype}"


def _all_equal(flat: np.ndarray) -> bool:
    # Compared as bytes so that nan payloads and the sign of zero are preserved.
    first = flat[:1].tobytes()
    return flat.tobytes() == first * flat.size


def _nested(array: np.ndarray, dtype: DType) -> str:
    if array.ndim == 1:
        return "[" + ", ".join(_element(x, dtype) for x in array) + "]"
    return "[" + ", ".join(_nested(sub, dtype) for sub in array) + "]"


def _element(x, dtype: DType) -> str:
    if dtype.is_bool:
        return "true" if x else "false"
    if dtype.is_int:
        return str(int(x))
    return _float(x, dtype)


def _float(x, dtype: DType) -> str:
    """A float literal that parses back to the same bits in `dtype`."""
    if not math.isfinite(float(x)):
        if dtype in (DType.f16, DType.bf16):          # MLIR's hex form has the type's width
            return f"0x{int(np.asarray(x, dtype.np).view(np.uint16)):04X}"
        if dtype is DType.f32:
            bits = struct.unpack("<I", struct.pack("<f", float(x)))[0]
            return f"0x{bits:08X}"
        bits = struct.unpack("<Q", struct.pack("<d", float(x)))[0]
        return f"0x{bits:016X}"
    # numpy's str is the shortest decimal that round-trips in the value's own precision.
    text = str(np.float32(x)) if dtype is DType.f32 else repr(float(x))
    mantissa, e, exponent = text.partition("e")
    if "." not in mantissa:                 # MLIR float literals need a decimal point
        mantissa += ".0"
    return mantissa + (e + exponent if e else "")


def _string(text: str) -> str:
    """An MLIR string literal: `"` and `\\` escaped, other non-printables as `\\XX` hex."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.extend(f"\\{b:02X}" for b in ch.encode("utf-8"))
    return '"' + "".join(out) + '"'
