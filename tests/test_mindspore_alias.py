"""The `mindspore` name: the import hook binds graphspore's own modules (no copies) under
MindSpore's module paths; `graphspore run` / `python -m graphspore SCRIPT.py` turn it on;
a real MindSpore install keeps the name unless shadowing is asked for."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import graphspore
from graphspore import mindspore_alias


@pytest.fixture
def aliased():
    assert mindspore_alias.alias_mindspore() is True
    yield
    mindspore_alias.unalias_mindspore()


def test_import_forms_bind_graphspore_modules(aliased):
    import mindspore
    import mindspore as ms
    from mindspore import nn, ops, Tensor
    import mindspore.nn as nn2
    from mindspore.ops import operations as P, composite as C, functional as F
    import mindspore.common.dtype as mstype
    from mindspore.common.initializer import Normal, One
    import mindspore.dataset as ds
    import mindspore.dataset.vision as vision
    import mindspore.dataset.transforms as transforms
    from mindspore.dataset.vision import transforms as vision_transforms
    import mindspore.train
    from mindspore.communication import init, get_rank, get_group_size
    import mindspore.amp as amp

    assert mindspore is graphspore and ms is graphspore
    assert nn is graphspore.nn and nn2 is graphspore.nn and ops is graphspore.ops
    assert Tensor is graphspore.Tensor
    assert P.MatMul is graphspore.ops.MatMul and F.matmul is graphspore.ops.matmul
    assert C is not None
    assert mstype.float32 is graphspore.float32
    assert Normal is graphspore.nn.init.Normal and One is graphspore.nn.init.One
    assert ds is graphspore.dataset and vision is graphspore.dataset.vision
    assert transforms is graphspore.dataset.transforms
    assert vision_transforms.Rescale is graphspore.dataset.vision.Rescale
    assert mindspore.train is graphspore.train
    assert amp is graphspore.amp
    assert init is graphspore.communication.init and get_rank is graphspore.communication.get_rank
    assert get_group_size is graphspore.communication.get_group_size
    # the modules are graphspore's own: their specs keep graphspore's names
    assert graphspore.nn.__spec__.name == "graphspore.nn"
    assert sys.modules["mindspore.nn"] is graphspore.nn
    # `mindspore.tensor` stays the function after importing mindspore.common.tensor
    import mindspore.common.tensor
    assert mindspore.common.tensor.Tensor is graphspore.Tensor
    assert callable(ms.tensor) and not isinstance(ms.tensor, type)


def test_unknown_module_is_a_clear_import_error(aliased):
    with pytest.raises(ModuleNotFoundError, match="mindspore.no_such_thing"):
        import mindspore.no_such_thing  # noqa: F401


def test_unalias_removes_the_name(aliased):
    import mindspore  # noqa: F401
    mindspore_alias.unalias_mindspore()
    assert "mindspore" not in sys.modules
    if not mindspore_alias.real_mindspore_installed():
        with pytest.raises(ModuleNotFoundError):
            import mindspore  # noqa: F401,F811
    assert mindspore_alias.alias_mindspore() is True   # the fixture's teardown undoes it


SCRIPT = textwrap.dedent("""\
    import numpy as np
    import mindspore as ms
    from mindspore import nn, ops, Tensor
    import mindspore.common.dtype as mstype

    net = nn.Dense(3, 2, weight_init="ones", bias_init="zeros")
    x = Tensor(np.array([[1.0, 2.0, 3.0]], np.float32))
    print("out", net(x).asnumpy().tolist(), ms.__version__, ms.tensor([1, 2]).dtype == mstype.int64)
    """)


def _run(args, cwd, env=None):
    env = dict(os.environ if env is None else env)
    env.setdefault("GRAPHSPORE_CACHE_DIR", str(cwd / "cache"))
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=240)


@pytest.mark.parametrize("command", [["-m", "graphspore", "run"], ["-m", "graphspore"]])
def test_mindspore_script_runs_through_graphspore(tmp_path, command):
    (tmp_path / "script.py").write_text(SCRIPT)
    done = _run(command + ["script.py"], tmp_path)
    assert done.returncode == 0, done.stderr
    # Dense with ones weights, zero bias: each output is 1 + 2 + 3
    assert f"out [[6.0, 6.0]] {graphspore.__version__} True" in done.stdout


def test_plain_python_has_no_mindspore_until_asked(tmp_path):
    (tmp_path / "script.py").write_text(SCRIPT)
    done = _run(["script.py"], tmp_path)
    if mindspore_alias.real_mindspore_installed():
        pytest.skip("a real MindSpore is installed here")
    assert done.returncode == 1 and "No module named 'mindspore'" in done.stderr
    (tmp_path / "repl.py").write_text("import graphspore\ngraphspore.alias_mindspore()\n"
                                      + SCRIPT)
    done = _run(["repl.py"], tmp_path)
    assert done.returncode == 0 and "out [[6.0, 6.0]]" in done.stdout, done.stderr


def test_a_real_mindspore_is_not_shadowed_unless_asked(tmp_path):
    fake = tmp_path / "site" / "mindspore"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("REAL = True\n")
    (tmp_path / "which.py").write_text(
        "import mindspore\nprint('real' if getattr(mindspore, 'REAL', False) else "
        "mindspore.__name__)\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "site"))
    done = _run(["-m", "graphspore", "run", "which.py"], tmp_path, env)
    assert done.returncode == 0 and done.stdout.strip() == "real", done.stderr
    assert "a real MindSpore is installed" in done.stderr
    done = _run(["-m", "graphspore", "run", "--shadow-mindspore", "which.py"], tmp_path, env)
    assert done.returncode == 0 and done.stdout.strip() == "graphspore", done.stderr


def test_version_is_the_distribution_version():
    from importlib.metadata import version
    assert graphspore.__version__ == version("graphspore")
    assert tuple(int(p) for p in graphspore.__version__.split(".")[:2]) >= (0, 1)


def test_amp_loss_scalers_follow_mindspore():
    from graphspore import amp, Tensor
    scaler = amp.StaticLossScaler(1024.0)
    np.testing.assert_array_equal(scaler.scale(Tensor(np.float32(2.0))).asnumpy(), 2048.0)
    grads = scaler.unscale((Tensor(np.array([1024.0, 2048.0], np.float32)),))
    np.testing.assert_array_equal(grads[0].asnumpy(), [1.0, 2.0])
    dynamic = amp.DynamicLossScaler(scale_value=2 ** 10, scale_factor=2, scale_window=2)
    finite = amp.all_finite([Tensor(np.ones(3, np.float32))])
    assert bool(finite.asnumpy()) is True
    assert bool(amp.all_finite([Tensor(np.array([1.0, np.inf], np.float32))]).asnumpy()) \
        is False
    dynamic.adjust(finite)
    assert float(dynamic.scale_value.asnumpy()) == 2 ** 10   # one finite step of a window 2
    dynamic.adjust(finite)
    assert float(dynamic.scale_value.asnumpy()) == 2 ** 11   # window reached: times 2
    dynamic.adjust(Tensor(False))
    assert float(dynamic.scale_value.asnumpy()) == 2 ** 10   # overflow: divided by 2
    net = graphspore.nn.Dense(2, 2)
    assert amp.auto_mixed_precision(net, "O0") is net
    with pytest.raises(TypeError, match="must be a Cell"):       # as MindSpore
        amp.auto_mixed_precision("net", "O2")
