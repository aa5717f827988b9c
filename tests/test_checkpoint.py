"""Checkpoints: round trip, clear errors for missing/corrupt/mismatched files, atomic writes."""
import os

import numpy as np
import pytest

from graphspore import Parameter, Tensor, nn
from graphspore.checkpoint import (CheckpointError, load_checkpoint, load_param_into_net,
                                   save_checkpoint)


class Inner(nn.Cell):
    def __init__(self, n):
        super().__init__()
        self.b = Parameter(Tensor(np.arange(n, dtype=np.float32)), name="b")

    def construct(self, x):
        return x + self.b


class Net(nn.Cell):
    def __init__(self, shape=(2, 3), seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.w = Parameter(Tensor(rng.normal(size=shape).astype(np.float32)), name="w")
        self.steps = Parameter(Tensor(np.array(seed, np.int32)), name="steps",
                               requires_grad=False)
        self.inner = Inner(shape[1])

    def construct(self, x):
        return self.inner(x @ self.w)


def _arrays(net):
    return {name: p.asnumpy().copy() for name, p in net.parameters_and_names()}


def test_round_trip_cell(tmp_path):
    src, dst = Net(seed=1), Net(seed=2)
    path = str(tmp_path / "net.ckpt")
    save_checkpoint(src, path)
    params = load_checkpoint(path)
    assert set(params) == {"w", "steps", "inner.b"}
    assert all(isinstance(p, Parameter) for p in params.values())
    assert params["inner.b"].name == "inner.b"
    assert load_param_into_net(dst, params) == ([], [])
    for name, value in _arrays(src).items():
        got = _arrays(dst)[name]
        assert got.dtype == value.dtype
        np.testing.assert_array_equal(got, value)


def test_suffix_append_dict_filters_and_lists(tmp_path):
    net = Net()
    save_checkpoint(net, str(tmp_path / "model"), append_dict={"epoch": 3, "lr": 0.5})
    path = str(tmp_path / "model.ckpt")
    assert os.path.exists(path)
    params = load_checkpoint(path, filter_prefix="inner")
    assert set(params) == {"w", "steps", "epoch", "lr"}
    assert int(params["epoch"].asnumpy()) == 3
    assert params["lr"].asnumpy().dtype == np.float32
    not_loaded, extra = load_param_into_net(Net(seed=5), params)
    assert not_loaded == ["inner.b"] and sorted(extra) == ["epoch", "lr"]
    items = [{"name": "a", "data": Tensor(np.ones(2, np.float32))}, net.w]
    save_checkpoint(items, str(tmp_path / "list.safetensors"))
    loaded = load_checkpoint(str(tmp_path / "list.safetensors"))
    np.testing.assert_array_equal(loaded["w"].asnumpy(), net.w.asnumpy())
    np.testing.assert_array_equal(loaded["a"].asnumpy(), np.ones(2))


def test_load_into_net_argument(tmp_path):
    src, dst = Net(seed=1), Net(seed=2)
    path = str(tmp_path / "n.ckpt")
    save_checkpoint(src, path)
    load_checkpoint(path, net=dst)
    np.testing.assert_array_equal(dst.w.asnumpy(), src.w.asnumpy())


def test_missing_file(tmp_path):
    path = str(tmp_path / "nope.ckpt")
    with pytest.raises(FileNotFoundError, match="nope.ckpt"):
        load_checkpoint(path)


def test_truncated_file(tmp_path):
    path = str(tmp_path / "t.ckpt")
    save_checkpoint(Net(), path)
    data = open(path, "rb").read()
    for cut in (4, len(data) // 2, len(data) - 1):
        with open(path, "wb") as f:
            f.write(data[:cut])
        with pytest.raises(CheckpointError, match="t.ckpt"):
            load_checkpoint(path)


def test_corrupt_data_detected_by_checksum(tmp_path):
    path = str(tmp_path / "c.ckpt")
    save_checkpoint(Net(), path)
    data = bytearray(open(path, "rb").read())
    data[-3] ^= 0xFF                          # flip bits inside the tensor data
    with open(path, "wb") as f:
        f.write(bytes(data))
    with pytest.raises(CheckpointError, match="c.ckpt.*corrupt"):
        load_checkpoint(path)
    with open(path, "wb") as f:
        f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json here!}")
    with pytest.raises(CheckpointError, match="not a valid checkpoint"):
        load_checkpoint(path)


def test_shape_mismatch_names_parameter_and_file(tmp_path):
    path = str(tmp_path / "s.ckpt")
    save_checkpoint(Net(shape=(2, 3)), path)
    dst = Net(shape=(4, 3), seed=9)
    before = _arrays(dst)
    with pytest.raises(CheckpointError, match=r"'w' from '.*s\.ckpt' has shape \(2, 3\)"):
        load_param_into_net(dst, load_checkpoint(path))
    for name, value in before.items():            # nothing was half-loaded
        np.testing.assert_array_equal(_arrays(dst)[name], value)


def test_dtype_mismatch(tmp_path):
    path = str(tmp_path / "d.ckpt")
    w64 = np.linspace(0, 1, 6).reshape(2, 3)
    steps = np.array(1, np.int32)
    save_checkpoint({"w": w64, "steps": steps, "inner.b": np.zeros(3, np.float32)}, path)
    with pytest.raises(CheckpointError, match="'w'.*float64.*float32"):
        load_param_into_net(Net(), load_checkpoint(path), strict_load=True)
    net = Net()
    load_param_into_net(net, load_checkpoint(path))           # float64 -> float32 is cast
    np.testing.assert_allclose(net.w.asnumpy(), w64.astype(np.float32))
    assert net.w.asnumpy().dtype == np.float32
    save_checkpoint({"w": np.zeros((2, 3), np.float32), "steps": np.float32(1.5)}, path)
    with pytest.raises(CheckpointError, match="'steps'.*float32.*int32"):
        load_param_into_net(Net(), load_checkpoint(path))


def test_crash_during_replace_keeps_old_file(tmp_path, monkeypatch):
    path = str(tmp_path / "a.ckpt")
    old = Net(seed=1)
    save_checkpoint(old, path)
    before = open(path, "rb").read()

    def crash(src, dst):
        raise OSError("simulated crash")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        save_checkpoint(Net(seed=2), path)
    monkeypatch.undo()
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["a.ckpt"]         # no temporary file left behind
    params = load_checkpoint(path)
    np.testing.assert_array_equal(params["w"].asnumpy(), old.w.asnumpy())


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="Cell"):
        load_param_into_net(object(), {})
    with pytest.raises(TypeError, match="save_checkpoint"):
        save_checkpoint(42, str(tmp_path / "x.ckpt"))


def test_train_cell_saves_optimizer_state_under_mindspore_names(tmp_path):
    net = Net()
    optimizer = nn.Adam(net.trainable_params())
    train_net = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), optimizer)
    path = str(tmp_path / "train.ckpt")
    save_checkpoint(train_net, path)
    names = set(load_checkpoint(path))
    assert {"w", "inner.b", "moment1.w", "moment2.inner.b", "beta1_power",
            "learning_rate", "global_step"} <= names
    fresh = Net(seed=3)
    not_loaded, extra = load_param_into_net(fresh, load_checkpoint(path))
    assert not_loaded == [] and "moment1.w" in extra
    np.testing.assert_array_equal(fresh.w.asnumpy(), net.w.asnumpy())
