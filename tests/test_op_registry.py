"""Every primitive of the registry has what the tables derived from it need.

A registered op (`ir.ops.OPS`) must have: a lowering of the kind its groups call for (a
scalar body in codegen/scalar_ops.py for elementwise ops, an index map for sources, views and
gathers, a pass that takes it out before codegen for effects (gs.print), a kernel lowering for
every other op); an eager reference; a public `ops` function
(its own name, or the one in graphspore/ops/names.py); a row in tests/test_op_table.py.
Elementwise primitives also get a Primitive class and a Tensor method, derived from the
registry. A new primitive that misses one fails here, by name.
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest

import graphspore as ms
from graphspore import ops
from graphspore.codegen.scalar_ops import SCALAR_OPS
from graphspore.frontend.operators import TENSOR_METHODS
from graphspore.ir.ops import (BINARY, COMPARE, ELEMENTWISE, OPS, UNARY,
                               evaluated_in_place)
from graphspore.ops import names
from test_op_table import ROWS

lowering = importlib.import_module("graphspore.codegen.lower_to_loops")
regions = importlib.import_module("graphspore.codegen.lower_regions")

# Ops users reach through Python syntax, not an ops function: region ops are what `if`,
# `while` and `for` on a tensor compile to; update_row is the loop gradient's tape write;
# the gradient hooks are what ops.HookBackward and Cell.register_backward_hook emit.
INTERNAL = frozenset({"gs.if", "gs.while", "gs.for", "gs.update_row", "gs.grad_hook",
                      "gs.host_hook"})


def test_internal_ops_are_lowered():
    assert {"gs.if", "gs.while", "gs.for"} == set(regions.REGION_LOWERINGS)
    assert "gs.update_row" in lowering.KERNEL_LOWERINGS
fuse = importlib.import_module("graphspore.codegen.fuse")


@pytest.mark.parametrize("name", sorted(OPS))
def test_registered_op_has_lowering_reference_public_name_and_row(name):
    opdef, short = OPS[name], OPS[name].short_name
    assert short in {row.name for row in ROWS}, f"{name}: no row in tests/test_op_table.py"
    assert callable(opdef.reference), f"{name}: no eager reference"
    if name in INTERNAL:
        return
    if ELEMENTWISE in opdef.groups:
        assert short in SCALAR_OPS, f"{name}: no scalar body in codegen/scalar_ops.py"
    elif evaluated_in_place(name):
        assert short in lowering.INDEX_MAP_LOWERINGS, f"{name}: no index-map lowering"
    else:
        assert name in lowering.KERNEL_LOWERINGS, f"{name}: no kernel lowering"
    assert callable(opdef.reference), f"{name}: no eager reference"
    function = names.function_name(short)
    assert callable(getattr(ops, function, None)), (
        f"{name}: no public function ops.{function} (add one, or its spelling to "
        f"graphspore/ops/names.py)")
    assert short in {row.name for row in ROWS}, f"{name}: no row in tests/test_op_table.py"


@pytest.mark.parametrize("name", sorted(n for n in OPS if ELEMENTWISE in OPS[n].groups))
def test_elementwise_primitive_has_a_primitive_class_and_a_tensor_method(name):
    function = names.function_name(OPS[name].short_name)
    primitive = getattr(ops, names.primitive_name(function), None)
    assert isinstance(primitive, type) and primitive.__gs_op__, name
    if OPS[name].groups & {UNARY, BINARY, COMPARE}:     # not select(cond, x, y)
        assert OPS[name].short_name in TENSOR_METHODS, f"{name}: no Tensor method"


def test_scalar_table_holds_only_registered_elementwise_ops():
    elementwise = {OPS[n].short_name for n in OPS if ELEMENTWISE in OPS[n].groups}
    assert set(SCALAR_OPS) == elementwise


def test_fusion_classes_follow_the_groups():
    assert fuse.VIEWS == {"gs.reshape", "gs.broadcast_to", "gs.transpose", "gs.reverse",
                          "gs.slice"}
    assert fuse.GATHERS == {"gs.gather", "gs.gather_elements"}
    assert fuse.SOURCES == {"gs.constant", "gs.iota"}
    assert {"gs.reduce_sum", "gs.matmul", "gs.pad", "gs.concat", "gs.scatter_add"} <= (
        fuse.KERNEL_ROOTS)
    assert not fuse.KERNEL_ROOTS & {n for n in OPS if ELEMENTWISE in OPS[n].groups}
    assert fuse.kernel_kind("gs.reduce_max") == "reduce"
    assert fuse.kernel_kind("gs.scatter_add") == "scatter"
    assert fuse.kernel_kind("gs.exp") == "elementwise"


def test_derived_function_class_and_method_agree():
    x = ms.Tensor(np.array([0.5, -1.5, 2.0], np.float32))
    y = ms.Tensor(np.array([1.0, 2.0, -3.0], np.float32))
    expected = np.logical_and(x.asnumpy() > 0, y.asnumpy() > 0)
    assert np.array_equal(ops.logical_and(x > 0, y > 0).asnumpy(), expected)
    assert np.array_equal(ops.LogicalAnd()(x > 0, y > 0).asnumpy(), expected)
    assert np.array_equal((x > 0).logical_and(y > 0).asnumpy(), expected)
    np.testing.assert_array_equal(ops.operations.NotEqual()(x, y).asnumpy(),
                                  x.asnumpy() != y.asnumpy())
    compiled = ms.jit(lambda a, b: a.maximum(b) + ops.Minimum()(a, b))
    np.testing.assert_allclose(compiled(x, y).asnumpy(), x.asnumpy() + y.asnumpy())
