"""The graph IR: types, values and ops, graphs, the op registry, printer, verifier, passes."""
from .types import DType, TensorType, broadcast_shapes, promote
from .core import (Loc, GraphsporeError, GraphsporeTypeError, GraphsporeIndexError, Value, Op,
                   Graph, Builder, EagerBuilder, building, at_loc, current_builder, eager_value,
                   clone_ops,
                   inline_graph, user_loc, register_package_dir)
from . import ops
