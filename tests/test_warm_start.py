"""The on-disk program cache (graphspore/warm_start.py): a first call in a fresh process loads
the whole program (no stage of the pipeline runs) and computes what a cold compile computes;
anything the program folded in that differs (the source, a global constant, a Cell
attribute, a shape, a training flag) is a miss; a damaged or misplaced entry is recompiled;
guards still hold in the process that loaded the program."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import graphspore as ms
from graphspore import Tensor, nn, program_key
from graphspore.runtime import cache

SCRIPT = textwrap.dedent('''
    import json, os, sys
    import numpy as np
    import graphspore as ms
    from graphspore import Tensor, jit, nn, pipeline, value_and_grad, warm_start

    SCALE = float(os.environ.get("WS_SCALE", "1.0"))
    BATCH = int(os.environ.get("WS_BATCH", "8"))


    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.dense = nn.Dense(4, 3)
            self.shift = float(os.environ.get("WS_SHIFT", "0.0"))

        def construct(self, x):
            return self.dense(x) * SCALE + self.shift


    ms.set_seed(0)
    net = Net()
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    optimizer = nn.SGD(net.trainable_params(), learning_rate=0.5)
    grad_fn = value_and_grad(lambda x, y: loss_fn(net(x), y), None, optimizer.parameters)


    @jit
    def step(x, y):
        loss, grads = grad_fn(x, y)
        optimizer(grads)
        return loss


    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, 4)).astype(np.float32)
    y = (np.arange(BATCH) % 3).astype(np.int32)
    w = net.dense.weight.asnumpy().copy(); b = net.dense.bias.asnumpy().copy()
    net.set_train(True)
    losses = [float(step(Tensor(x), Tensor(y)).asnumpy()) for _ in range(2)]
    extra = None
    if os.environ.get("WS_REBIND"):          # a guard of the loaded program still holds
        SCALE = 2.0 * SCALE
        extra = float(step(Tensor(x), Tensor(y)).asnumpy())
    runs = dict(pipeline.STAGE_RUNS)
    print(json.dumps(dict(losses=losses, runs=runs, stats=warm_start.stats(),
                          corrupt=warm_start.cache.stats()["corrupt"], extra=extra,
                          w=w.tolist(), b=b.tolist(), x=x.tolist(), y=y.tolist())))
''')


def run(path, cache_dir, **env):
    environment = dict(os.environ, GRAPHSPORE_CACHE_DIR=str(cache_dir))
    environment.pop("GRAPHSPORE_DUMP", None)
    environment.update({k: str(v) for k, v in env.items()})
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          timeout=300, env=environment)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def reference_losses(out, scale, shift, lr=0.5, scales=None):
    """SGD steps (two, or one per entry of `scales`) of softmax cross-entropy over
    `(x @ w.T + b) * scale + shift`, in float64 numpy."""
    w, b = np.array(out["w"]), np.array(out["b"])
    x, y = np.array(out["x"]), np.array(out["y"])
    losses = []
    for scale in scales or [scale, scale]:
        logits = (x @ w.T + b) * scale + shift
        shifted = logits - logits.max(axis=1, keepdims=True)
        prob = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        losses.append(-np.log(prob[np.arange(len(y)), y]).mean())
        g = prob.copy()
        g[np.arange(len(y)), y] -= 1
        g *= scale / len(y)
        w, b = w - lr * g.T @ x, b - lr * g.sum(axis=0)
    return losses


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    path = tmp_path_factory.mktemp("warm") / "step.py"
    path.write_text(SCRIPT)
    return path


@pytest.fixture(scope="module")
def cold_and_warm(script, tmp_path_factory):
    cache_dir = tmp_path_factory.mktemp("warm-cache")
    return cache_dir, run(script, cache_dir), run(script, cache_dir)


def test_a_warm_first_call_loads_the_program_without_running_any_stage(cold_and_warm):
    _, cold, warm = cold_and_warm
    assert cold["stats"]["saved"] == 1 and cold["runs"]["parse"] == 1
    assert warm["stats"]["hits"] == 1 and warm["runs"] == {}       # no parse, no LLVM
    assert warm["losses"] == cold["losses"]                        # bit for bit
    np.testing.assert_allclose(cold["losses"], reference_losses(cold, 1.0, 0.0), rtol=1e-5)


@pytest.mark.parametrize("change", [dict(WS_SCALE=3.0), dict(WS_SHIFT=0.25),
                                    dict(WS_BATCH=6)],
                         ids=["global constant", "Cell attribute", "shape"])
def test_what_the_program_folded_in_changed_is_a_miss(cold_and_warm, script, change):
    cache_dir, _, _ = cold_and_warm
    out = run(script, cache_dir, **change)
    assert out["stats"]["hits"] == 0 and out["runs"]["parse"] == 1
    scale, shift = float(change.get("WS_SCALE", 1.0)), float(change.get("WS_SHIFT", 0.0))
    np.testing.assert_allclose(out["losses"], reference_losses(out, scale, shift), rtol=1e-5)


def test_changed_source_is_a_miss(cold_and_warm, tmp_path):
    cache_dir, cold, _ = cold_and_warm
    edited = tmp_path / "step.py"             # the same file name and place would not matter:
    edited.write_text(SCRIPT.replace("* SCALE + self.shift", "* SCALE - self.shift"))
    out = run(edited, cache_dir, WS_SHIFT=0.5)
    assert out["stats"]["hits"] == 0 and out["runs"]["parse"] == 1
    np.testing.assert_allclose(out["losses"], reference_losses(out, 1.0, -0.5), rtol=1e-5)


def test_a_rebound_global_still_recompiles_after_a_warm_load(cold_and_warm, script):
    cache_dir, cold, _ = cold_and_warm
    out = run(script, cache_dir, WS_REBIND=1)
    assert out["stats"]["hits"] == 1
    assert out["losses"] == cold["losses"]
    # the third step runs with SCALE doubled: compiled again, from the updated weights
    expected = reference_losses(out, None, 0.0, scales=[1.0, 1.0, 2.0])
    np.testing.assert_allclose(out["extra"], expected[-1], rtol=1e-5)
    assert out["runs"]["parse"] == 1


def test_damaged_and_swapped_entries_are_recompiled(script, tmp_path):
    cache_dir = tmp_path / "cache"
    cold = run(script, cache_dir)
    one = _program_entries(cache_dir)
    other = run(script, cache_dir, WS_SCALE=2.0)
    (two,) = _program_entries(cache_dir) - one
    (one,) = one
    first, second = one.read_bytes(), two.read_bytes()
    one.write_bytes(second)                   # two valid entries under each other's names
    two.write_bytes(first)
    swapped = run(script, cache_dir)
    assert swapped["stats"]["hits"] == 0 and swapped["corrupt"] == 1
    assert swapped["losses"] == cold["losses"] and one.read_bytes() == first   # rewritten
    damaged = bytearray(first)
    damaged[-100] ^= 0x10                     # one flipped bit in the object code
    one.write_bytes(bytes(damaged))
    again = run(script, cache_dir)
    assert again["stats"]["hits"] == 0 and again["corrupt"] == 1
    assert again["losses"] == cold["losses"]
    assert run(script, cache_dir, WS_SCALE=2.0)["losses"] == other["losses"]
    assert run(script, cache_dir)["stats"]["hits"] == 1   # the rewritten entry loads again


def _program_entries(cache_dir) -> set:
    return {p for p in cache_dir.iterdir() if _is_program_entry(p)}


def _is_program_entry(path) -> bool:
    blob = path.read_bytes()
    return path.suffix == ".gso" and b"format=program-" in blob[:2048]


# --------------------------------------------------------------- the fingerprint itself

OFFSET = 1.5


def offset_fn(x):
    return x + OFFSET


def test_the_fingerprint_follows_globals_cells_parameters_and_flags():
    global OFFSET
    base = program_key.fingerprint((offset_fn,), ()).digest
    assert program_key.fingerprint((offset_fn,), ()).digest == base     # deterministic
    OFFSET = -0.0
    try:
        assert program_key.fingerprint((offset_fn,), ()).digest != base
    finally:
        OFFSET = 1.5
    net = nn.Dense(3, 2)
    before = program_key.fingerprint((net,), ()).digest
    net.set_train(True)
    trained = program_key.fingerprint((net,), ()).digest
    net.weight = ms.Parameter(Tensor(np.zeros((2, 4), np.float32)), name="weight")
    assert len({before, trained, program_key.fingerprint((net,), ()).digest}) == 3


def test_unfingerprintable_objects_make_the_call_unkeyable(tmp_path):
    handle = open(tmp_path / "f.txt", "w")
    try:
        def uses_a_file(x):
            return x + len(handle.name)
        assert program_key.fingerprint((uses_a_file,), ()) is None
    finally:
        handle.close()
    assert cache.ProgramKey("a", "t", "c", "f", "p").digest != \
        cache.ProgramKey("b", "t", "c", "f", "p").digest


def test_a_program_calling_a_gradient_hook_is_not_saved(tmp_path, monkeypatch):
    """Its hook ids index this process' registry: another process must parse again."""
    from graphspore import ops, warm_start
    monkeypatch.setenv("GRAPHSPORE_CACHE_DIR", str(tmp_path))
    warm_start.reset_stats()
    hook = ops.HookBackward(lambda grad: grad[0] * 2)
    grad = ms.grad(lambda x, y: hook(x * y) * y, grad_position=(0, 1))
    dx, dy = grad(Tensor(1, ms.float32), Tensor(2, ms.float32))
    assert (float(dx.asnumpy()), float(dy.asnumpy())) == (8.0, 6.0)
    assert warm_start.stats()["unsaved"] == 1 and warm_start.stats()["saved"] == 0
    assert not any(_is_program_entry(p) for p in tmp_path.iterdir())


def _triple(x):
    return x * 3.0 + 1.0


def test_dumps_and_the_disable_switch_bypass_the_program_cache(tmp_path, monkeypatch):
    """A dump needs the stages to run, so with dumps on a saved program is not loaded;
    GRAPHSPORE_CACHE_DISABLE=1 neither loads nor saves."""
    from graphspore import pipeline, warm_start
    from graphspore.ir import dump as ir_dump
    cache_dir = tmp_path / "cache"
    monkeypatch.setenv("GRAPHSPORE_CACHE_DIR", str(cache_dir))
    x = Tensor(np.arange(4, dtype=np.float32))
    warm_start.reset_stats()
    np.testing.assert_array_equal(ms.jit(_triple)(x).asnumpy(), np.arange(4) * 3.0 + 1.0)
    assert warm_start.stats()["saved"] == 1
    parses = pipeline.STAGE_RUNS.get("parse", 0)
    ir_dump.configure("parse", str(tmp_path / "dumps"))
    try:
        ms.jit(_triple)(x)
    finally:
        ir_dump.configure(None)
    assert pipeline.STAGE_RUNS["parse"] == parses + 1 and warm_start.stats()["hits"] == 0
    assert any(p.name.endswith("_parse.mlir") for p in (tmp_path / "dumps").iterdir())
    ms.jit(_triple)(x)                                   # dumps off again: loaded
    assert warm_start.stats()["hits"] == 1
    monkeypatch.setenv("GRAPHSPORE_CACHE_DISABLE", "1")
    ms.jit(_triple)(x)
    assert pipeline.STAGE_RUNS["parse"] == parses + 2 and warm_start.stats()["hits"] == 1


def _halve(x, w):
    return x * w + 0.5


def test_a_bfloat16_program_loads_with_its_dtypes(tmp_path, monkeypatch):
    """Buffer dtypes are saved by graphspore name: numpy codes bfloat16 as a bare "<V2"."""
    from graphspore import warm_start
    monkeypatch.setenv("GRAPHSPORE_CACHE_DIR", str(tmp_path))
    warm_start.reset_stats()
    x = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3)).astype(ms.bfloat16)
    w = ms.Parameter(Tensor(np.full((2, 3), 2.0, np.float32)).astype(ms.bfloat16), name="w")
    first = ms.jit(_halve)(x, w)
    again = ms.jit(_halve)(x, w)                     # a new function object: from disk
    assert warm_start.stats()["saved"] == 1 and warm_start.stats()["hits"] == 1
    assert again.dtype == ms.bfloat16 and first.dtype == ms.bfloat16
    expected = np.arange(6, dtype=np.float32).reshape(2, 3) * 2.0 + 0.5   # exact in bf16
    np.testing.assert_array_equal(again.asnumpy().astype(np.float32), expected)
