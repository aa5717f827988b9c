"""Executable: check arguments, hand buffers to a compiled kernel, return fresh outputs.

Kernel calling convention (what codegen emits)::

    define void @<entry>(ptr noalias %buffers)

``%buffers`` points to an array of ``ptr``: the inputs in order, then the outputs in order, then
the workspace arena (always present; a shared 64-byte dummy when the plan needs no workspace).
Every buffer is C-contiguous with exactly the static shape and dtype of its spec; bool is one
byte per element (LLVM i8 storage). Inputs and outputs are numpy allocations, so kernels may
assume natural element alignment only; the workspace arena is 64-byte aligned.

Fast path (the reason for this module's shape). Fetching ``arr.ctypes.data`` costs about 0.9 us
per array, more than the native call. Instead the runtime compiled a trampoline
``<entry>__py(ptr %tuple)`` that reads the data pointers straight out of a CPython tuple of
arrays (:func:`.engine.trampoline_ir`); Python passes that tuple as one ``ctypes.py_object``.
ctypes ``CFUNCTYPE`` releases the GIL during the call, so threads run kernels in parallel; the
tuple keeps every array alive until the call returns. The CPython/numpy struct offsets this
relies on are verified once (:data:`OBJECT_LAYOUT_OK`); if they do not hold, calls fall back to
an address table built with ``arr.ctypes.data`` (slower, same results).

Checks are cheap tuple comparisons against precomputed ``(shape, dtype, strides)`` triples; an
argument that fails them goes through a slow path that either copies it to a contiguous array
(non-contiguous or subclass inputs) or raises :class:`ArgumentError` naming the argument.
"""

import ctypes
import sys

import numpy as np

from .buffers import WorkspacePool, aligned_empty
from .engine import TRAMPOLINE_SUFFIX

_KERNEL_BY_TUPLE = ctypes.CFUNCTYPE(None, ctypes.py_object)
_KERNEL_BY_TABLE = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


def _object_layout_ok():
    """True if tuple items sit at byte 24 + 8 i and an ndarray's data pointer at byte 16."""
    if sys.implementation.name != "cpython" or ctypes.sizeof(ctypes.c_void_p) != 8:
        return False
    probe = np.arange(3, dtype=np.float32)
    other = np.zeros(2)
    pair = (other, probe)
    try:
        size = ctypes.c_ssize_t.from_address(id(pair) + 16).value
        item = ctypes.c_void_p.from_address(id(pair) + 24 + 8).value
        data = ctypes.c_void_p.from_address(id(probe) + 16).value
    except (ValueError, OSError):
        return False
    return size == 2 and item == id(probe) and data == probe.ctypes.data


OBJECT_LAYOUT_OK = _object_layout_ok()


class ArgumentError(TypeError, ValueError):
    """A call argument does not match the compiled signature (arity, type, shape or dtype).

    ``index`` is the 0-based argument position (None for an arity error), ``name`` its name if
    the Executable was given ``input_names``, ``expected``/``found`` short descriptions.
    """

    def __init__(self, message, index=None, name=None, expected=None, found=None):
        super().__init__(message)
        self.index = index
        self.name = name
        self.expected = expected
        self.found = found


def _spec_text(shape, dtype):
    return f"{tuple(shape)} {np.dtype(dtype).name}"


def _normalize_specs(specs, what):
    normalized = []
    for position, spec in enumerate(specs):
        try:
            shape, dtype = spec
            shape = tuple(int(d) for d in shape)
            dtype = np.dtype(dtype)
        except (TypeError, ValueError) as error:
            raise TypeError(f"{what} spec {position} must be (shape, dtype): {error}") from None
        if any(d < 0 for d in shape):
            raise ValueError(f"{what} spec {position} has a negative dimension: {shape}")
        normalized.append((shape, dtype))
    return tuple(normalized)


class Executable:
    """A callable compiled graph: ``outputs = executable(*inputs)``."""

    def __init__(self, module, entry, input_specs, output_specs, workspace_bytes,
                 input_names=None):
        self.module = module
        self.entry = entry
        self.input_specs = _normalize_specs(input_specs, "input")
        self.output_specs = _normalize_specs(output_specs, "output")
        self.workspace_bytes = int(workspace_bytes)
        if input_names is not None:
            input_names = tuple(str(n) for n in input_names)
            if len(input_names) != len(self.input_specs):
                raise ValueError(f"{len(input_names)} input names for "
                                 f"{len(self.input_specs)} inputs")
        self.input_names = input_names
        self._count = len(self.input_specs)
        self._checks = tuple((shape, dtype, np.empty(shape, dtype).strides)
                             for shape, dtype in self.input_specs)
        self._pool = WorkspacePool(self.workspace_bytes) if self.workspace_bytes > 0 else None
        self._dummy = aligned_empty((64,), np.uint8)
        if OBJECT_LAYOUT_OK and module.has_trampoline(entry):
            self._by_tuple = _KERNEL_BY_TUPLE(module.address(entry + TRAMPOLINE_SUFFIX))
            self._by_table = None
        else:
            self._by_tuple = None
            self._by_table = _KERNEL_BY_TABLE(module.address(entry))
        self._fast = _build_fast_call(self)

    def __call__(self, *arrays):
        """Run the kernel on ``arrays`` (numpy); return a list of freshly allocated outputs."""
        return self._fast(arrays)

    def fast_call(self, wrap=None, result=None, check=None):
        """A function ``run(tensors)`` for the per-call hot path: ``tensors`` is a sequence of
        objects holding their array in ``._array`` (graphspore Tensors); it returns
        ``wrap(outputs[result])``. Reading ``._array`` raises AttributeError for anything else.
        ``check(last output)``, if given, runs after the kernel (it may raise); without it the
        generated code has no such line. Without a trampoline it goes through :meth:`_slow`."""
        return _build_fast_call(self, wrap=wrap, result=result, check=check)

    def _slow(self, arrays):
        """Call with full checking and normalisation (the fast path's fallback)."""
        arrays = self._normalize(arrays)
        outputs = [np.empty(shape, dtype) for shape, dtype in self.output_specs]
        self._run_with_workspace((*arrays, *outputs))
        return outputs

    def _run_with_workspace(self, buffers):
        """Run with a workspace arena of this call's own (one per concurrent call)."""
        pool = self._pool
        workspace = self._dummy if pool is None else pool.acquire()
        try:
            self._run((*buffers, workspace))
        finally:
            if pool is not None:
                pool.release(workspace)

    def call_into(self, arrays, outputs):
        """Run writing into caller-owned `outputs` (checked like inputs); returns None.

        For reused output buffers: the benchmarks and loops that overwrite one result."""
        arrays = self._normalize(tuple(arrays))
        if len(outputs) != len(self.output_specs):
            raise ArgumentError(f"expected {len(self.output_specs)} output buffers, got "
                                f"{len(outputs)}")
        for index, (out, (shape, dtype)) in enumerate(zip(outputs, self.output_specs)):
            if not (isinstance(out, np.ndarray) and out.shape == shape and out.dtype == dtype
                    and out.flags.c_contiguous and out.flags.writeable):
                raise ArgumentError(f"output {index}: expected a writeable C-contiguous "
                                    f"{_spec_text(shape, dtype)} array")
        self._run_with_workspace((*arrays, *outputs))

    def _run(self, buffers):
        if self._by_tuple is not None:
            self._by_tuple(buffers)
        else:
            table = (ctypes.c_void_p * len(buffers))(*[b.ctypes.data for b in buffers])
            self._by_table(table)

    def check(self, arrays):
        """Raise :class:`ArgumentError` unless ``arrays`` match the input specs; else None.

        Non-contiguous arrays pass (they are copied at call time); wrong arity, non-arrays,
        wrong shape or wrong dtype do not.
        """
        self._normalize(tuple(arrays))

    def _normalize(self, arrays):
        """Arrays ready for the kernel: verified, C-contiguous, plain ndarrays."""
        if len(arrays) != self._count:
            self._raise_arity(len(arrays))
        ready = []
        for index, (array, (shape, dtype)) in enumerate(zip(arrays, self.input_specs)):
            if not isinstance(array, np.ndarray):
                self._raise_argument(index, shape, dtype, f"{type(array).__name__}")
            if array.shape != shape or array.dtype != dtype:
                found = _spec_text(array.shape, array.dtype)
                self._raise_argument(index, shape, dtype, found)
            if type(array) is not np.ndarray:
                array = array.view(np.ndarray)
            if not (array.flags.c_contiguous and array.flags.aligned):
                array = np.ascontiguousarray(array)
                if not array.flags.aligned:
                    array = array.copy()
            ready.append(array)
        return tuple(ready)

    def _label(self, index):
        if self.input_names is None:
            return f"argument {index}"
        return f"argument {index} ({self.input_names[index]!r})"

    def _raise_arity(self, found):
        names = "" if self.input_names is None else f" ({', '.join(self.input_names)})"
        raise ArgumentError(f"expected {self._count} arguments{names}, got {found}",
                            expected=str(self._count), found=str(found))

    def _raise_argument(self, index, shape, dtype, found):
        expected = _spec_text(shape, dtype)
        name = None if self.input_names is None else self.input_names[index]
        raise ArgumentError(f"{self._label(index)}: expected shape {expected}, got {found}",
                            index=index, name=name, expected=expected, found=found)

    def __repr__(self):
        inputs = ", ".join(_spec_text(s, d) for s, d in self.input_specs)
        outputs = ", ".join(_spec_text(s, d) for s, d in self.output_specs)
        return f"Executable({self.entry}: ({inputs}) -> ({outputs}))"


def _build_fast_call(executable, wrap=None, result=None, check=None):
    """A function ``fast(arrays) -> outputs`` specialised to this executable's arity; with
    ``wrap``, ``fast(tensors) -> wrap(outputs[result])`` reading each array from ``._array``.

    Why generated source: a loop over ``zip(arrays, specs)`` spends about 0.5 us per call on
    iteration and tuple unpacking, a sixth of the overhead budget. The generated function checks
    each argument with straight-line attribute comparisons against constants bound in its
    namespace (``s<i>``, ``d<i>``, ``t<i>``: shape, dtype, C strides) and hands anything
    unusual to ``executable._slow``, which normalises or raises :class:`ArgumentError`.
    Without a trampoline it simply calls ``_slow``.
    """
    count = executable._count
    names = [f"a{i}" for i in range(count)]
    slow = executable._slow
    if check is not None:
        def slow(arrays, unchecked=executable._slow):
            outputs = unchecked(arrays)
            check(outputs[-1])
            return outputs
    namespace = {"nd": np.ndarray, "empty": np.empty, "slow": slow, "check": check,
                 "run": executable._by_tuple, "pool": executable._pool,
                 "dummy": executable._dummy, "wrap": wrap, "ArgumentError": ArgumentError}
    if wrap is not None:
        source = ["def fast(tensors):",
                  f"    if len(tensors) != {count}:",
                  f"        raise ArgumentError('expected {count} tensors')",
                  f"    arrays = ({''.join(f'tensors[{i}]._array, ' for i in range(count))})"
                  if count else "    arrays = ()"]
        if executable._by_tuple is None:
            exec("\n".join(source + [f"    return wrap(slow(arrays)[{result}])"]), namespace)
            return namespace["fast"]
    elif executable._by_tuple is None:
        return slow
    conditions = []
    for i, (shape, dtype, strides) in enumerate(executable._checks):
        namespace.update({f"s{i}": shape, f"d{i}": dtype, f"t{i}": strides})
        # `is`: a native-order array's dtype is numpy's canonical instance; any other equal
        # dtype just takes the slow path
        conditions.append(f"a{i}.__class__ is nd and a{i}.shape == s{i} "
                          f"and a{i}.dtype is d{i} and a{i}.strides == t{i}")
    outputs = []
    for j, (shape, dtype) in enumerate(executable.output_specs):
        namespace.update({f"os{j}": shape, f"od{j}": dtype})
        outputs.append(f"empty(os{j}, od{j})")
    unpack = f"    {', '.join(names)}, = arrays\n" if count else ""
    buffers = "".join(f"{n}, " for n in names) + "".join(f"o{j}, " for j in range(len(outputs)))
    fallback = "slow(arrays)" if wrap is None else f"wrap(slow(arrays)[{result}])"
    lines = source if wrap is not None else [
        "def fast(arrays):",
        f"    if len(arrays) != {count}:",
        "        return slow(arrays)"]
    lines += [
        unpack.rstrip("\n"),
        f"    if not ({' and '.join(conditions) or 'True'}):",
        f"        return {fallback}",
        *[f"    o{j} = {text}" for j, text in enumerate(outputs)],
    ]
    if executable._pool is None:
        lines.append(f"    run(({buffers}dummy))")
    else:
        lines += ["    workspace = pool.acquire()",
                  f"    try:\n        run(({buffers}workspace))",
                  "    finally:\n        pool.release(workspace)"]
    if check is not None:
        lines.append(f"    check(o{len(outputs) - 1})")
    if wrap is not None:
        lines.append(f"    return wrap(o{result})")
    else:
        lines.append(f"    return [{', '.join(f'o{j}' for j in range(len(outputs)))}]")
    exec("\n".join(line for line in lines if line), namespace)  # noqa: S102 (trusted source)
    return namespace["fast"]
