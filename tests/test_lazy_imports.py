"""What `import graphspore` leaves for later: dataset, checkpoint, amp, experimental, the
mindspore alias hook, nn's metrics, callbacks and training wrappers (imported when one of
their names is first read), the IR printer (used by dumps) and ml_dtypes (at the first
bfloat16): without a bytecode cache every module costs its compile on every import. Each
lazy name must be exactly the object its module defines."""
import importlib
import os
import subprocess
import sys

import graphspore
from graphspore import nn

LAZY_MODULES = ["graphspore.dataset", "graphspore.checkpoint", "graphspore.amp",
                "graphspore.experimental", "graphspore.mindspore_alias",
                "graphspore.nn.metrics", "graphspore.nn.callbacks", "graphspore.nn.train",
                "graphspore.ir.printer", "ml_dtypes"]


def test_import_graphspore_leaves_them_unimported():
    script = ("import sys, graphspore\n"
              f"print([m for m in {LAZY_MODULES!r} if m in sys.modules])\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "[]"


def test_nn_lazy_names_are_their_modules_all():
    for module, names in nn._LAZY.items():
        source = importlib.import_module(f"graphspore.nn.{module}")
        assert tuple(source.__all__) == names, module
        for name in names:
            assert getattr(nn, name) is getattr(source, name)
        assert getattr(nn, module) is source
        assert set(names) <= set(dir(nn)) and set(names) <= set(nn.__all__)


def test_graphspore_lazy_names_and_modules():
    for name, module in graphspore._LAZY_NAMES.items():
        assert getattr(graphspore, name) is getattr(
            importlib.import_module(f"graphspore.{module}"), name)
    for module in graphspore._LAZY_MODULES:
        assert getattr(graphspore, module) is importlib.import_module(f"graphspore.{module}")
        assert module in dir(graphspore)
    from graphspore import dataset, load_checkpoint   # noqa: F401  (from-imports work)
    from graphspore.nn import Model, LossMonitor       # noqa: F401
    assert graphspore.Model is nn.Model


def test_unknown_names_still_raise_attribute_error():
    for module in (graphspore, nn):
        try:
            getattr(module, "no_such_name")
        except AttributeError as exc:
            assert "no_such_name" in str(exc)
        else:
            raise AssertionError("no AttributeError")


def test_codegen_dispatches_conv_window_and_indexing_ops_without_their_modules(tmp_path):
    from graphspore.codegen import lower_conv, lower_window
    lower_to_loops = importlib.import_module("graphspore.codegen.lower_to_loops")
    assert lower_to_loops.CONV_OPS == tuple(lower_conv.CONV_LOWERINGS)
    assert lower_to_loops.WINDOW_OPS == tuple(lower_window.WINDOW_LOWERINGS)
    script = ("import sys, numpy as np, graphspore as ms\n"
              "net = ms.nn.Dense(3, 2)\n"
              "f = ms.value_and_grad(lambda x: ms.ops.relu(net(x)).sum(), None,\n"
              "                      net.trainable_params())\n"
              "loss, grads = ms.jit(f)(ms.Tensor(np.ones((4, 3), np.float32)))\n"
              "print([m for m in ('graphspore.codegen.lower_conv',\n"
              "    'graphspore.codegen.lower_window', 'graphspore.codegen.lower_indexing')\n"
              "    if m in sys.modules], 'graphspore.codegen.lower_to_loops' in sys.modules)\n")
    (tmp_path / "dense_step.py").write_text(script)
    run = subprocess.run([sys.executable, str(tmp_path / "dense_step.py")], capture_output=True,
                         text=True, timeout=300,
                         env=dict(os.environ, GRAPHSPORE_CACHE_DIR=str(tmp_path / "cache")))
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "[] True"
