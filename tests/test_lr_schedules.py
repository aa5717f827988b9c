"""Learning-rate schedules and parameter groups against closed forms: MindSpore's list
functions and schedule Cells (eager and compiled), per-step and scheduled rates inside a
compiled train step that compiles once, grouped lr / weight decay / order_params, and errors."""
import math

import numpy as np
import pytest

import graphspore
from graphspore import (Parameter, Tensor, jit, load_checkpoint, nn, ops, save_checkpoint,
                        value_and_grad)

MODES = ["eager", "compiled"]
STEPS = np.arange(12)


def _epochs(total, per_epoch):
    return np.floor(np.arange(total) / per_epoch)


# --------------------------------------------------------------------------- list functions

def test_piecewise_constant_lr():
    milestone, rates = [2, 5, 10], [0.1, 0.05, 0.01]
    expected = [rates[np.searchsorted(milestone, i, side="right")] for i in range(10)]
    assert nn.piecewise_constant_lr(milestone, rates) == expected
    assert nn.piecewise_constant_lr((3, 3, 4), (0.3, 0.2, 0.1)) == [0.3, 0.3, 0.3, 0.1]
    # MindSpore's module paths reach the same functions and Cells
    assert nn.dynamic_lr.piecewise_constant_lr is nn.piecewise_constant_lr
    assert nn.learning_rate_schedule.WarmUpLR is nn.WarmUpLR


@pytest.mark.parametrize("per_epoch,decay_epoch,stair", [(1, 1, False), (2, 3, False),
                                                          (2, 3, True), (3, 20, True)])
def test_decay_list_functions(per_epoch, decay_epoch, stair):
    total, lr, rate = 13, 0.2, 0.7
    e = _epochs(total, per_epoch)
    ratio = np.floor(e / decay_epoch) if stair else e / decay_epoch
    args = (lr, rate, total, per_epoch, decay_epoch, stair)
    np.testing.assert_allclose(nn.exponential_decay_lr(*args), lr * rate ** ratio, rtol=1e-12)
    np.testing.assert_allclose(nn.inverse_decay_lr(*args), lr / (1 + rate * ratio),
                               rtol=1e-12)
    natural = np.floor(e / decay_epoch) * decay_epoch if stair else e
    np.testing.assert_allclose(nn.natural_exp_decay_lr(*args), lr * np.exp(-rate * natural),
                               rtol=1e-12)


@pytest.mark.parametrize("per_epoch,decay_epoch", [(1, 4), (2, 2), (3, 1)])
def test_cosine_polynomial_warmup_list_functions(per_epoch, decay_epoch):
    total = 14
    e = _epochs(total, per_epoch)
    t = np.minimum(e, decay_epoch)
    np.testing.assert_allclose(nn.cosine_decay_lr(0.01, 0.1, total, per_epoch, decay_epoch),
                               0.01 + 0.045 * (1 + np.cos(np.pi * t / decay_epoch)),
                               rtol=1e-12)
    np.testing.assert_allclose(
        nn.polynomial_decay_lr(0.1, 0.01, total, per_epoch, decay_epoch, 0.5),
        0.09 * (1 - t / decay_epoch) ** 0.5 + 0.01, rtol=1e-12)
    periods = np.maximum(np.ceil(e / decay_epoch), 1) * decay_epoch
    np.testing.assert_allclose(
        nn.polynomial_decay_lr(0.1, 0.01, total, per_epoch, decay_epoch, 2.0, True),
        0.09 * (1 - e / periods) ** 2.0 + 0.01, rtol=1e-12)
    np.testing.assert_allclose(nn.warmup_lr(0.1, total, per_epoch, decay_epoch),
                               0.1 * t / decay_epoch, rtol=1e-12)


def test_list_functions_match_mindspore_documented_outputs():
    """The outputs printed in MindSpore's docstring examples."""
    documented = [
        (nn.exponential_decay_lr(0.1, 0.9, 6, 2, 1), [0.1, 0.1, 0.09, 0.09, 0.081, 0.081]),
        (nn.natural_exp_decay_lr(0.1, 0.9, 6, 2, 2, True),
         [0.1, 0.1, 0.1, 0.1, 0.016529888822158657, 0.016529888822158657]),
        (nn.inverse_decay_lr(0.1, 0.5, 6, 1, 1, True),
         [0.1, 0.06666666666666667, 0.05, 0.04, 0.03333333333333333, 0.028571428571428574]),
        (nn.cosine_decay_lr(0.01, 0.1, 6, 2, 2), [0.1, 0.1, 0.055, 0.055, 0.01, 0.01]),
        (nn.polynomial_decay_lr(0.1, 0.01, 6, 2, 2, 0.5),
         [0.1, 0.1, 0.07363961030678928, 0.07363961030678928, 0.01, 0.01]),
        (nn.warmup_lr(0.1, 6, 2, 2), [0.0, 0.0, 0.05, 0.05, 0.1, 0.1]),
    ]
    for got, expected in documented:
        np.testing.assert_allclose(got, expected, rtol=1e-12)

# ------------------------------------------------------------------------- schedule Cells


def _cosine(step, min_lr=0.01, max_lr=0.1, decay_steps=5):
    return min_lr + 0.5 * (max_lr - min_lr) * (
        1 + np.cos(np.pi * np.minimum(step, decay_steps) / decay_steps))


SCHEDULES = [   # (schedule, formula, steps)
    (nn.ExponentialDecayLR(0.1, 0.9, 4), lambda s: 0.1 * 0.9 ** (s / 4), STEPS),
    (nn.ExponentialDecayLR(0.1, 0.9, 4, True), lambda s: 0.1 * 0.9 ** np.floor(s / 4), STEPS),
    (nn.NaturalExpDecayLR(0.1, 0.3, 4), lambda s: 0.1 * np.exp(-0.3 * s), STEPS),
    (nn.NaturalExpDecayLR(0.1, 0.3, 4, True),
     lambda s: 0.1 * np.exp(-0.3 * np.floor(s / 4) * 4), STEPS),
    (nn.InverseDecayLR(0.1, 0.5, 3), lambda s: 0.1 / (1 + 0.5 * s / 3), STEPS),
    (nn.InverseDecayLR(0.1, 0.5, 3, True), lambda s: 0.1 / (1 + 0.5 * np.floor(s / 3)), STEPS),
    (nn.CosineDecayLR(0.01, 0.1, 5), _cosine, STEPS),
    (nn.CosineDecayLR(0.0, 2.0, 1000), lambda s: _cosine(s, 0.0, 2.0, 1000), STEPS * 97),
    (nn.PolynomialDecayLR(0.1, 0.01, 5, 0.5),
     lambda s: 0.09 * (1 - np.minimum(s, 5) / 5) ** 0.5 + 0.01, STEPS),
    (nn.PolynomialDecayLR(0.1, 0.01, 5, 2.0, True),
     lambda s: 0.09 * (1 - s / (5 * np.maximum(np.ceil(s / 5), 1))) ** 2.0 + 0.01, STEPS),
    (nn.WarmUpLR(0.1, 3), lambda s: 0.1 * np.minimum(s, 3) / 3, STEPS),
]


@pytest.mark.parametrize("schedule,formula,steps", SCHEDULES,
                         ids=[f"{type(s).__name__}{i}" for i, (s, *_) in enumerate(SCHEDULES)])
def test_schedule_cells_eager_and_compiled(schedule, formula, steps):
    compiled = jit(lambda step: schedule(step))
    eager_values, compiled_values = [], []
    for s in steps:
        step = Tensor(np.array(s, np.int32))
        eager_values.append(float(schedule(step).asnumpy()))
        compiled_values.append(float(compiled(step).asnumpy()))
    expected = formula(steps.astype(np.float64))
    np.testing.assert_allclose(eager_values, expected, rtol=2e-6, atol=1e-9)
    np.testing.assert_allclose(compiled_values, expected, rtol=2e-6, atol=1e-9)
    assert len(compiled._programs) == 1


def test_cosine_decay_keeps_relative_accuracy_to_the_last_step():
    """lr - min_lr near the end, where 1 + cos(pi t) cancels in float32 (6% off at t =
    0.9997 when evaluated as written), then exactly min_lr from the last step on."""
    schedule = nn.CosineDecayLR(0.0, 1.0, 10000)
    compiled = jit(lambda step: schedule(step))
    steps = np.array([5000, 9000, 9900, 9990, 9997, 9999, 10000, 10003])
    expected = 0.5 * (1 + np.cos(np.pi * np.minimum(steps, 10000) / 10000))
    for run in (schedule, compiled):
        got = [float(run(Tensor(np.array(s, np.int32))).asnumpy()) for s in steps]
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=0)
        assert got[-2:] == [0.0, 0.0]


def test_schedule_base_class_needs_construct():
    with pytest.raises(NotImplementedError, match="construct"):
        nn.LearningRateSchedule()(Tensor(np.array(0, np.int32)))

# ---------------------------------------------------------------- rates inside a train step


W0 = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], np.float32)
B0 = np.array([0.1, -0.2], np.float32)


def _params(bias_name="fc.bias"):
    return [Parameter(Tensor(W0.copy()), name="fc.weight"),
            Parameter(Tensor(B0.copy()), name=bias_name)]


def _train(optimizer, steps, mode):
    """`steps` updates on loss = sum(p * p) / 2 over the optimizer's parameters (gradient p),
    eagerly or as one compiled step; returns the compiled step (or None)."""
    def forward_fn(scale):
        loss = 0.0
        for p in optimizer.parameters:
            loss = loss + 0.5 * ops.sum(p * p)
        return loss * scale

    grad_fn = value_and_grad(forward_fn, None, optimizer.parameters)

    def train_step(scale):
        loss, grads = grad_fn(scale)
        optimizer(grads)
        return loss

    step = jit(train_step) if mode == "compiled" else train_step
    for _ in range(steps):
        step(Tensor(np.array(1.0, np.float32)))
    return step if mode == "compiled" else None


def _sgd_closed_form(p0, rates, weight_decay=0.0):
    """Plain SGD on the quadratic: p_T = p_0 * prod_t (1 - lr_t * (1 + weight_decay))."""
    return p0.astype(np.float64) * np.prod([1 - lr * (1 + weight_decay) for lr in rates])


def _check(got, expected, rtol=2e-6):
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=1e-7)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("form", ["list", "numpy", "tensor"])
def test_per_step_learning_rates_in_sgd(mode, form):
    values = [0.1, 0.05, 0.02]
    lr = {"list": values, "numpy": np.array(values, np.float32),
          "tensor": Tensor(np.array(values, np.float32))}[form]
    opt = nn.SGD(_params(), learning_rate=lr)
    step = _train(opt, 5, mode)
    rates = [values[min(t, 2)] for t in range(5)]          # past the end: the last value
    _check(opt.parameters[0].asnumpy(), _sgd_closed_form(W0, rates))
    _check(opt.parameters[1].asnumpy(), _sgd_closed_form(B0, rates))
    assert int(opt.global_step.asnumpy()) == 5 and opt.dynamic_lr
    np.testing.assert_array_equal(opt.learning_rate.asnumpy(), np.float32(values))
    if mode == "compiled":          # five steps, five rates, one program
        assert len(step._programs) == 1


@pytest.mark.parametrize("mode", MODES)
def test_schedule_cell_as_learning_rate(mode):
    opt = nn.Momentum(_params(), nn.CosineDecayLR(0.01, 0.1, 3), momentum=0.0)
    step = _train(opt, 5, mode)
    rates = [_cosine(t, decay_steps=3) for t in range(5)]
    _check(opt.parameters[0].asnumpy(), _sgd_closed_form(W0, rates))
    if mode == "compiled":
        assert len(step._programs) == 1


@pytest.mark.parametrize("mode", MODES)
def test_get_lr_reads_the_step_then_advances_it(mode):
    opt = nn.SGD(_params(), learning_rate=[0.3, 0.2])
    get_lr = jit(lambda: opt.get_lr()) if mode == "compiled" else opt.get_lr
    got = [get_lr().asnumpy() for _ in range(3)]
    # exactly the stored float32 values: the one-hot dot product adds only zeros
    np.testing.assert_array_equal(got, np.float32([0.3, 0.2, 0.2]))
    assert int(opt.global_step.asnumpy()) == 3

def test_graph_mode_optimizer_cell_with_grouped_dynamic_rates():
    """In GRAPH_MODE the optimizer Cell itself compiles; constant gradients g give
    p_T = p_0 - sum_t lr_t * g."""
    graphspore.set_context(mode=graphspore.GRAPH_MODE)
    w, b = _params()
    opt = nn.SGD([{"params": [w], "lr": nn.WarmUpLR(0.4, 2)}, {"params": [b]}],
                 learning_rate=[0.1, 0.3])
    grads = (Tensor(np.ones_like(W0)), Tensor(np.full_like(B0, 2.0)))
    for _ in range(3):
        opt(grads)
    _check(w.asnumpy(), W0 - (0.0 + 0.2 + 0.4) * 1.0)
    _check(b.asnumpy(), B0 - (0.1 + 0.3 + 0.3) * 2.0)


def test_checkpoint_holds_the_learning_rates(tmp_path):
    w, b = _params()
    opt = nn.SGD([{"params": [w], "lr": [0.2, 0.1]}, {"params": [b]}],
                 learning_rate=(0.3, 0.2, 0.1))
    assert opt.trainable_params() == []
    path = str(tmp_path / "optimizer.ckpt")
    save_checkpoint(opt, path)
    saved = load_checkpoint(path)
    np.testing.assert_array_equal(saved["learning_rate"].asnumpy(), np.float32([0.3, 0.2, 0.1]))
    np.testing.assert_array_equal(saved["learning_rate_group_0"].asnumpy(),
                                  np.float32([0.2, 0.1]))

# ------------------------------------------------------------------------ parameter groups


@pytest.mark.parametrize("mode", MODES)
def test_sgd_groups_override_lr_and_weight_decay(mode):
    w, gamma = _params(bias_name="norm.gamma")
    groups = [{"params": [w], "lr": [0.2, 0.1], "weight_decay": 0.1}, {"params": [gamma]}]
    opt = nn.SGD(groups, learning_rate=0.05, weight_decay=0.5)
    assert opt.is_group and opt.is_group_lr and opt.decay_flags == (True, True)
    _train(opt, 3, mode)
    _check(w.asnumpy(), _sgd_closed_form(W0, [0.2, 0.1, 0.1], 0.1))
    # grouped: the optimizer's weight_decay applies to 'gamma' too (no name filter)
    _check(gamma.asnumpy(), _sgd_closed_form(B0, [0.05] * 3, 0.5))
    assert opt.get_lr_parameter(w).name == "learning_rate_group_0"
    assert opt.get_lr_parameter([gamma])[0] is opt.learning_rate


def test_without_groups_beta_and_gamma_are_not_decayed():
    w, gamma = _params(bias_name="norm.gamma")
    opt = nn.SGD([w, gamma], learning_rate=0.1, weight_decay=0.5)
    _train(opt, 2, "eager")
    _check(w.asnumpy(), _sgd_closed_form(W0, [0.1, 0.1], 0.5))
    _check(gamma.asnumpy(), _sgd_closed_form(B0, [0.1, 0.1]))


def _adam_reference(p0, rates, weight_decay, steps):
    """MindSpore's Adam on the quadratic (g = p + wd * p), in float64."""
    p, m, v = p0.astype(np.float64), 0.0, 0.0
    for t in range(1, steps + 1):
        g = p + weight_decay * p
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        lr = rates[t - 1] * math.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
        p = p - lr * m / (np.sqrt(v) + 1e-8)
    return p


@pytest.mark.parametrize("mode", MODES)
def test_adam_groups(mode):
    w, b = _params()
    schedule = nn.WarmUpLR(0.02, 2)
    groups = [{"params": [b], "weight_decay": 0.2}, {"params": [w], "lr": schedule}]
    opt = nn.Adam(groups, learning_rate=0.01)
    assert opt.parameters == (b, w) and opt.weight_decay == (0.2, 0.0)
    _train(opt, 3, mode)
    # rtol as test_train's Adam: 1 - beta2 ** t loses digits in float32
    _check(b.asnumpy(), _adam_reference(B0, [0.01] * 3, 0.2, 3), rtol=1e-5)
    _check(w.asnumpy(), _adam_reference(W0, [0.0, 0.01, 0.02], 0.0, 3), rtol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_order_params_sets_the_update_order(mode):
    w, b = _params()
    groups = [{"params": [b], "lr": 0.3}, {"params": [w], "weight_decay": 0.1},
              {"order_params": [w, b]}]
    opt = nn.AdamWeightDecay(groups, learning_rate=0.1)
    assert opt.parameters == (w, b)
    assert [p.name for p in opt.group_lr] == ["learning_rate", "learning_rate_group_0"]
    assert opt.weight_decay == (0.1, 0.0)
    _train(opt, 1, mode)
    # first AdamWeightDecay step: m = 0.1 g, v = 0.001 g^2, update = m / (sqrt(v) + eps)
    for param, p0, lr, decay in ((w, W0, 0.1, 0.1), (b, B0, 0.3, 0.0)):
        first = 0.1 * p0 / (np.sqrt(0.001 * p0 * p0) + 1e-6)
        _check(param.asnumpy(), p0 - lr * (first + decay * p0))

# ---------------------------------------------------------------------------------- errors


def test_group_errors():
    w, b = _params()
    with pytest.raises(ValueError, match="unknown key 'grad_centralization'"):
        nn.SGD([{"params": [w], "grad_centralization": True}])
    with pytest.raises(ValueError, match="'fc.weight' is in group 0 and in group 1"):
        nn.SGD([{"params": [w, b]}, {"params": [w]}])
    with pytest.raises(ValueError, match="names must be unique"):
        nn.SGD([w, w])
    with pytest.raises(ValueError, match=r"missing \['fc.bias'\]"):
        nn.SGD([{"params": [w]}, {"params": [b]}, {"order_params": [w]}])
    with pytest.raises(ValueError, match="alone in its dict"):
        nn.SGD([{"params": [w]}, {"order_params": [w], "lr": 0.1}])
    with pytest.raises(ValueError, match="has no 'params'"):
        nn.SGD([{"lr": 0.1}])
    with pytest.raises(ValueError, match="empty"):
        nn.SGD([{"params": []}])
    with pytest.raises(TypeError, match="all Parameters or all dicts"):
        nn.SGD([w, {"params": [b]}])
    with pytest.raises(TypeError, match="must be Parameters"):
        nn.SGD([{"params": [w, 3.0]}])
    with pytest.raises(ValueError, match="group 0 'weight_decay' must be non-negative"):
        nn.SGD([{"params": [w], "weight_decay": -0.1}])


@pytest.mark.parametrize("lr,kind,message", [
    ("fast", TypeError, "learning_rate must be a float"),
    (object(), TypeError, "learning_rate must be a float"),
    ([[0.1, 0.2]], ValueError, "scalar or 1-D"),
    ([], ValueError, "empty"),
    ([0.1, -0.1], ValueError, "non-negative"),
    (-0.5, ValueError, "non-negative"),
    (["a", "b"], TypeError, "must be numbers"),
])
def test_learning_rate_errors(lr, kind, message):
    with pytest.raises(kind, match=message):
        nn.SGD(_params(), learning_rate=lr)


def test_weight_decay_errors():
    with pytest.raises(TypeError, match="weight_decay must be a float or an int"):
        nn.SGD(_params(), weight_decay="0.1")
    with pytest.raises(ValueError, match="weight_decay must be non-negative"):
        nn.Adam(_params(), weight_decay=-1.0)


@pytest.mark.parametrize("make,kind,message", [
    (lambda: nn.ExponentialDecayLR(1, 0.9, 4), TypeError, "'learning_rate' must be a float"),
    (lambda: nn.NaturalExpDecayLR(0.1, 0.9, 0), ValueError, "'decay_steps' must be greater"),
    (lambda: nn.InverseDecayLR(0.1, 0.9, 4, 1), TypeError, "'is_stair' must be a bool"),
    (lambda: nn.InverseDecayLR(0.1, -0.9, 4), ValueError, "'decay_rate' must be greater"),
    (lambda: nn.CosineDecayLR(0.1, 0.05, 4), ValueError, "'max_lr' must be greater"),
    (lambda: nn.CosineDecayLR(0, 0.1, 4), TypeError, "'min_lr' must be a float"),
    (lambda: nn.PolynomialDecayLR(0.1, 0.01, 4, 0.0), ValueError, "'power' must be greater"),
    (lambda: nn.WarmUpLR(0.1, 1.5), TypeError, "'warmup_steps' must be an int"),
    (lambda: nn.piecewise_constant_lr([2, 5], [0.1]), ValueError, "same size"),
    (lambda: nn.piecewise_constant_lr([5, 2], [0.1, 0.2]), ValueError, "increasing"),
    (lambda: nn.piecewise_constant_lr({2: 0.1}, [0.1]), TypeError, "list or tuple"),
    (lambda: nn.cosine_decay_lr(0.0, 0.1, 0, 1, 1), ValueError, "'total_step' must be"),
    (lambda: nn.warmup_lr(0.1, 10, True, 2), TypeError, "'step_per_epoch' must be an int"),
    (lambda: nn.polynomial_decay_lr(0.1, 0.0, 10, 1, 2, 1.0, "yes"), TypeError,
     "'update_decay_epoch' must be a bool"),
])
def test_schedule_argument_errors(make, kind, message):
    with pytest.raises(kind, match=message):
        make()
