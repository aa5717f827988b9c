"""The MindSpore nn layers beyond the basics: activations, batch normalization, more losses,
RMSProp/Adagrad, metrics, Model.eval/fit and the checkpoint callback. Each against numpy or
its closed form, eagerly and compiled; gradients against float64 central differences."""
import math
import os

import numpy as np
import pytest
from numeric import central_difference
from test_train import B0, GRADS, W0, _apply, _params

import graphspore
from graphspore import Parameter, Tensor, jit, nn, ops, value_and_grad
from graphspore.dataset import NumpySlicesDataset

MODES = ["eager", "compiled"]
F64 = graphspore.float64


def close(a, b, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def run(cell, *arrays, mode="eager"):
    tensors = [Tensor(a) for a in arrays]
    return (cell(*tensors) if mode == "eager" else jit(cell)(*tensors)).asnumpy()


def check_input_grad(cell, reference, x, mode, *extra, atol=1e-6):
    """d/dx sum(w * cell(x, *extra)) against central differences of the numpy reference,
    in float64, eagerly or through a compiled gradient."""
    w = np.random.default_rng(3).uniform(0.5, 1.5, size=reference(x, *extra).shape)
    weight, consts = Tensor(w), [Tensor(e) for e in extra]

    def objective(t):
        return ops.sum(cell(t, *consts) * weight)

    grad_fn = graphspore.grad(objective)
    grad_fn = jit(grad_fn) if mode == "compiled" else grad_fn
    got = grad_fn(Tensor(x)).asnumpy()
    expected = central_difference(lambda v: float(np.sum(reference(v, *extra) * w)), x)
    close(got, expected, rtol=1e-5, atol=atol)


# --------------------------------------------------------------------------- activations

def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


_erf = np.vectorize(math.erf)

ACTIVATIONS = {
    "ReLU6": (nn.ReLU6, lambda x: np.clip(x, 0, 6)),
    "LeakyReLU": (nn.LeakyReLU, lambda x: np.where(x >= 0, x, 0.2 * x)),
    "LeakyReLU(1.5)": (lambda: nn.LeakyReLU(1.5), lambda x: np.where(x >= 0, x, 1.5 * x)),
    "GELU": (nn.GELU, _gelu_tanh),
    "GELU(exact)": (lambda: nn.GELU(approximate=False),
                    lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2)))),
    "SiLU": (nn.SiLU, lambda x: x / (1 + np.exp(-x))),
    "ELU": (nn.ELU, lambda x: np.where(x >= 0, x, np.expm1(np.minimum(x, 0)))),
    "ELU(0.5)": (lambda: nn.ELU(0.5), lambda x: np.where(x >= 0, x, 0.5 * np.expm1(
        np.minimum(x, 0)))),
    "HSwish": (nn.HSwish, lambda x: x * np.clip(x + 3, 0, 6) / 6),
    "HSigmoid": (nn.HSigmoid, lambda x: np.clip(x + 3, 0, 6) / 6),
    "Identity": (nn.Identity, lambda x: x),
}
# away from every kink (0, +-3, 6) by more than the finite-difference step
X_ACT = np.linspace(-7.7, 7.3, 24)
assert np.min(np.abs(X_ACT[:, None] - np.array([0, -3, 3, 6]))) > 1e-3


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_values_and_gradients(name, mode):
    make, reference = ACTIVATIONS[name]
    x = X_ACT.reshape(4, 6)
    close(run(make(), x.astype(np.float32), mode=mode), reference(x), rtol=2e-5, atol=2e-6)
    check_input_grad(make(), reference, x, mode, atol=1e-5)


def test_activation_arguments():
    big = np.array([-200.0, 100.0], np.float32)              # exp(x) would overflow float32
    close(run(nn.ELU(), big), [-1.0, 100.0])
    grad = graphspore.grad(lambda t: ops.sum(nn.ELU()(t)))(Tensor(big)).asnumpy()
    close(grad, [0.0, 1.0])                                  # finite: no 0 * inf
    with pytest.raises(TypeError, match="alpha"):
        nn.LeakyReLU("0.1")
    with pytest.raises(TypeError, match="approximate"):
        nn.GELU(approximate=1)


# --------------------------------------------------------------------------- batch norm

def _bn_reference(x, gamma, beta, mean, var, eps=1e-5):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return ((x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
            * gamma.reshape(shape) + beta.reshape(shape))


def _batch_stats(x):
    axes = (0,) + tuple(range(2, x.ndim))
    return x.mean(axis=axes), x.var(axis=axes)            # biased, as MindSpore's CPU kernel


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls,shape", [(nn.BatchNorm2d, (4, 3, 5, 2)),
                                       (nn.BatchNorm1d, (6, 3)), (nn.BatchNorm1d, (4, 3, 5))])
def test_batchnorm_train_steps_and_eval(cls, shape, mode):
    rng = np.random.default_rng(0)
    bn = cls(3, momentum=0.8, gamma_init=Tensor(np.array([1.5, 0.5, 2.0], np.float32)),
             beta_init=Tensor(np.array([0.1, -0.2, 0.3], np.float32)))
    assert [p.name for p in bn.get_parameters()] == ["gamma", "beta", "moving_mean",
                                                     "moving_variance"]
    assert [p.name for p in bn.trainable_params()] == ["gamma", "beta"]
    gamma, beta = bn.gamma.asnumpy().copy(), bn.beta.asnumpy().copy()
    moving_mean, moving_var = np.zeros(3), np.ones(3)
    bn.set_train(True)
    call = bn if mode == "eager" else jit(bn)
    for step in range(3):
        x = (rng.normal(size=shape) * (step + 1) + step).astype(np.float32)
        mean, var = _batch_stats(x.astype(np.float64))
        close(call(Tensor(x)).asnumpy(), _bn_reference(x, gamma, beta, mean, var),
              rtol=1e-4, atol=1e-5)
        moving_mean = 0.8 * moving_mean + 0.2 * mean
        moving_var = 0.8 * moving_var + 0.2 * var
        close(bn.moving_mean.asnumpy(), moving_mean, rtol=1e-5)
        close(bn.moving_variance.asnumpy(), moving_var, rtol=1e-5)
    bn.set_train(False)
    x = rng.normal(size=shape).astype(np.float32)
    call = bn if mode == "eager" else jit(bn)
    close(call(Tensor(x)).asnumpy(), _bn_reference(x, gamma, beta, moving_mean, moving_var),
          rtol=1e-4, atol=1e-5)
    close(bn.moving_mean.asnumpy(), moving_mean, rtol=1e-5)   # eval leaves them alone


def test_batchnorm_use_batch_statistics_and_graph_mode():
    x = np.random.default_rng(1).normal(2.0, 3.0, size=(5, 2, 3, 3)).astype(np.float32)
    mean, var = _batch_stats(x.astype(np.float64))
    always = nn.BatchNorm2d(2, use_batch_statistics=True)        # batch stats even in eval
    close(run(always, x), _bn_reference(x, np.ones(2), np.zeros(2), mean, var), atol=1e-5)
    close(always.moving_mean.asnumpy(), 0.1 * mean, rtol=1e-5)
    never = nn.BatchNorm2d(2, use_batch_statistics=False, moving_mean_init=1.0)
    never.set_train(True)
    close(run(never, x), _bn_reference(x, np.ones(2), np.zeros(2), np.ones(2), np.ones(2)),
          atol=1e-5)
    close(never.moving_mean.asnumpy(), np.ones(2))
    graphspore.set_context(mode=graphspore.GRAPH_MODE)         # the Cell call compiles
    bn = nn.BatchNorm2d(2, affine=False)
    assert bn.trainable_params() == []
    bn.set_train(True)
    close(bn(Tensor(x)).asnumpy(), _bn_reference(x, np.ones(2), np.zeros(2), mean, var),
          atol=1e-5)
    close(bn.moving_variance.asnumpy(), 0.9 + 0.1 * var, rtol=1e-5)


def test_batchnorm_errors():
    with pytest.raises(ValueError, match="4-D"):
        nn.BatchNorm2d(3)(Tensor(np.zeros((2, 3), np.float32)))
    with pytest.raises(ValueError, match="num_features=3"):
        nn.BatchNorm1d(3)(Tensor(np.zeros((2, 4), np.float32)))
    with pytest.raises(ValueError, match="momentum"):
        nn.BatchNorm2d(3, momentum=1.5)
    with pytest.raises(ValueError, match="NCHW"):
        nn.BatchNorm2d(3, data_format="NHWC")
    with pytest.raises(ValueError, match="num_features"):
        nn.BatchNorm1d(0)


@pytest.mark.parametrize("mode", MODES)
def test_batchnorm_input_gradient(mode):
    """Batch statistics depend on x, so the gradient flows through mean and variance."""
    x = np.random.default_rng(2).normal(size=(4, 3)) * 2 + 1
    gamma, beta = np.array([1.5, 0.5, 2.0]), np.array([0.1, -0.2, 0.3])
    bn = nn.BatchNorm1d(3, gamma_init=Tensor(gamma), beta_init=Tensor(beta), dtype=F64)
    bn.set_train(True)

    def reference(v):
        mean, var = _batch_stats(v)
        return _bn_reference(v, gamma, beta, mean, var)

    check_input_grad(bn, reference, x, mode)


class _ConvBNNet(nn.Cell):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, pad_mode="valid")
        self.bn = nn.BatchNorm2d(3)
        self.relu = nn.ReLU()
        self.flatten = nn.Flatten()
        self.fc = nn.Dense(12, 2)

    def construct(self, x):
        return self.fc(self.flatten(self.relu(self.bn(self.conv(x)))))


def test_batchnorm_compiled_train_step_matches_eager():
    """value_and_grad + optimizer + moving statistics: one jit call per step, equal to the
    eager steps in loss, weights and moving statistics."""
    rng = np.random.default_rng(4)
    x = Tensor(rng.normal(size=(6, 2, 4, 4)).astype(np.float32))
    y = Tensor(rng.integers(0, 2, size=6).astype(np.int32))
    runs = []
    for compiled in (False, True):
        graphspore.set_seed(11)
        net = _ConvBNNet()
        net.set_train(True)
        loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
        opt = nn.Momentum(net.trainable_params(), 0.1, 0.9)
        grad_fn = value_and_grad(lambda a, b: loss_fn(net(a), b), None, opt.parameters)

        def step(a, b):
            loss, grads = grad_fn(a, b)
            opt(grads)
            return loss

        step = jit(step) if compiled else step
        losses = [float(step(x, y).asnumpy()) for _ in range(3)]
        runs.append((losses, [p.asnumpy().copy() for p in net.get_parameters()]))
    (eager_losses, eager_params), (jit_losses, jit_params) = runs
    close(jit_losses, eager_losses, rtol=1e-5, atol=1e-6)
    assert jit_losses[2] < jit_losses[0]
    for got, expected in zip(jit_params, eager_params):      # includes the moving statistics
        close(got, expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(eager_params[-3], 0.0)            # bn.moving_mean moved


# --------------------------------------------------------------------------- losses

def _smooth_l1(x, y, beta):
    d = np.abs(x - y)
    return np.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta)


def _huber(x, y, delta):
    d = np.abs(x - y)
    return np.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta))


def _bce(x, y, w=1.0):
    return -w * (y * np.log(x + 1e-12) + (1 - y) * np.log(1 - x + 1e-12))


def _kl(x, t):
    return np.where(t > 0, t * (np.log(np.where(t > 0, t, 1.0)) - x), 0.0)


_RNG = np.random.default_rng(5)
_REG_X, _REG_Y = _RNG.normal(size=(3, 4)) * 2, _RNG.normal(size=(3, 4))
_PROB = np.array([[0.1, 0.8, 0.35, 0.6], [0.95, 0.2, 0.5, 0.05], [0.3, 0.7, 0.45, 0.9]])
_TARGET = np.array([[0.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.5, 0.0], [1.0, 1.0, 0.0, 0.2]])
_BCE_WEIGHT = np.array([1.0, 2.0, 0.5, 1.5])
_LOGP = _RNG.normal(size=(3, 4))
_LOGP = _LOGP - np.log(np.exp(_LOGP).sum(1, keepdims=True))
_T = np.array([[0.2, 0.3, 0.5, 0.0], [0.25, 0.25, 0.25, 0.25], [0.0, 0.0, 1.0, 0.0]])

REDUCE = {"none": lambda v: v, "mean": np.mean, "sum": np.sum,
          "batchmean": lambda v: np.sum(v) / v.shape[0]}
LOSSES = {
    "SmoothL1": (lambda: nn.SmoothL1Loss(), _REG_X, _REG_Y,
                 lambda x, y: _smooth_l1(x, y, 1.0)),
    "SmoothL1(beta=0.5,mean)": (lambda: nn.SmoothL1Loss(0.5, "mean"), _REG_X, _REG_Y,
                                lambda x, y: np.mean(_smooth_l1(x, y, 0.5))),
    "Huber": (lambda: nn.HuberLoss(), _REG_X, _REG_Y, lambda x, y: np.mean(_huber(x, y, 1.0))),
    "Huber(sum,delta=0.4)": (lambda: nn.HuberLoss("sum", 0.4), _REG_X, _REG_Y,
                             lambda x, y: np.sum(_huber(x, y, 0.4))),
    "BCE": (lambda: nn.BCELoss(), _PROB, _TARGET, lambda x, y: np.mean(_bce(x, y))),
    "BCE(weight,none)": (lambda: nn.BCELoss(Tensor(_BCE_WEIGHT.astype(np.float32)), "none"),
                         _PROB, _TARGET, lambda x, y: _bce(x, y, _BCE_WEIGHT)),
    "KLDiv": (lambda: nn.KLDivLoss(), _LOGP, _T, lambda x, t: np.mean(_kl(x, t))),
    "KLDiv(batchmean)": (lambda: nn.KLDivLoss("batchmean"), _LOGP, _T,
                         lambda x, t: np.sum(_kl(x, t)) / 3),
    "KLDiv(sum)": (lambda: nn.KLDivLoss("sum"), _LOGP, _T, lambda x, t: np.sum(_kl(x, t))),
    "KLDiv(none)": (lambda: nn.KLDivLoss("none"), _LOGP, _T, _kl),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_values_and_gradients(name, mode):
    make, x, y, reference = LOSSES[name]
    got = run(make(), x.astype(np.float32), y.astype(np.float32), mode=mode)
    close(got, reference(x, y), rtol=2e-5, atol=2e-6)
    if "BCE(weight" in name:      # the weight is float32: the float64 check would promote
        return
    check_input_grad(make(), reference, x, mode, y, atol=1e-6)


def test_loss_edge_cases():
    probs = np.array([0.0, 1.0, 1.0, 0.0], np.float32)        # log 0 kept finite by eps=1e-12
    target = np.array([0.0, 1.0, 0.0, 1.0], np.float32)
    got = run(nn.BCELoss(reduction="none"), probs, target)
    close(got, _bce(probs.astype(np.float64), target), rtol=1e-4)
    assert np.isfinite(got).all() and got[2] > 27
    with pytest.raises(ValueError, match="beta must be positive"):
        nn.SmoothL1Loss(beta=0.0)
    with pytest.raises(ValueError, match="reduction"):
        nn.KLDivLoss("avg")
    with pytest.raises(ValueError, match="reduction"):
        nn.HuberLoss("batchmean")


# --------------------------------------------------------------------------- optimizers

def _reference(update, state_init, decay=(True, False)):
    """`update(p, g, state, decay_flag) -> (p, state)` over GRADS in float64."""
    params = [W0.astype(np.float64), B0.astype(np.float64)]
    states = [state_init(p) for p in params]
    for grads in GRADS:
        for i, g in enumerate(grads):
            params[i], states[i] = update(params[i], g.astype(np.float64), states[i], decay[i])
    return params


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("momentum,centered,wd", [(0.0, False, 0.0), (0.7, False, 0.1),
                                                  (0.5, True, 0.0), (0.0, True, 0.05)])
def test_rmsprop(mode, momentum, centered, wd):
    opt = nn.RMSProp(_params(), learning_rate=0.05, decay=0.8, momentum=momentum,
                     epsilon=1e-6, centered=centered, weight_decay=wd)
    names = [p.name for _, p in opt.parameters_and_names()]
    assert "mean_square.fc.weight" in names and "moment.fc.beta" in names
    assert ("mean_grad.fc.weight" in names) == centered
    close(opt.mean_square[0].asnumpy(), np.ones_like(W0))     # MindSpore starts it at 1

    def update(p, g, state, decay):
        s, m, a = state
        g = g + wd * p if decay else g
        s = 0.8 * s + 0.2 * g * g
        a = 0.8 * a + 0.2 * g
        denominator = np.sqrt(s - a * a + 1e-6) if centered else np.sqrt(s + 1e-6)
        m = momentum * m + 0.05 * g / denominator
        return p - m, (s, m, a)

    expected = _reference(update, lambda p: (np.ones_like(p), 0.0, 0.0))
    for got, want in zip(_apply(opt, mode), expected):
        close(got, want, rtol=1e-5, atol=1e-6)
    assert int(opt.global_step.asnumpy()) == 3


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("update_slots,wd", [(True, 0.0), (True, 0.1), (False, 0.0)])
def test_adagrad(mode, update_slots, wd):
    opt = nn.Adagrad(_params(), accum=0.2, learning_rate=0.1, update_slots=update_slots,
                     weight_decay=wd)
    assert [p.name for p in opt.accum] == ["accum.fc.weight", "accum.fc.beta"]

    def update(p, g, accum, decay):
        g = g + wd * p if decay else g
        if update_slots:
            accum = accum + g * g
        return p - 0.1 * g / np.sqrt(accum), accum

    expected = _reference(update, lambda p: np.full_like(p, 0.2))
    for got, want in zip(_apply(opt, mode), expected):
        close(got, want, rtol=1e-5, atol=1e-6)
    accum = opt.accum[1].asnumpy()
    close(accum, 0.2 + sum(g[1].astype(np.float64) ** 2 for g in GRADS) if update_slots
          else np.full(2, 0.2), rtol=1e-5)


def test_optimizer_argument_errors():
    with pytest.raises(ValueError, match="epsilon"):
        nn.RMSProp(_params(), epsilon=0.0)
    with pytest.raises(ValueError, match="decay"):
        nn.RMSProp(_params(), decay=-0.1)
    with pytest.raises(ValueError, match="accum"):
        nn.Adagrad(_params(), accum=-1.0)
    assert not hasattr(nn, "AdamW")      # MindSpore 2.x nn has AdamWeightDecay only


# --------------------------------------------------------------------------- metrics

def test_accuracy_loss_mae_mse():
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    acc = nn.Accuracy()
    acc.update(Tensor(scores.astype(np.float32)), Tensor(np.array([1, 0, 0, 0], np.int32)))
    assert acc.eval() == 0.75
    acc.update(scores[:2], np.eye(2)[[0, 0]])                  # one-hot labels
    assert acc.eval() == pytest.approx(4 / 6)
    acc.clear()
    with pytest.raises(RuntimeError, match="no samples"):
        acc.eval()
    multi = nn.Accuracy("multilabel")
    assert multi(np.array([[1, 0, 1], [0, 1, 1]]), np.array([[1, 0, 1], [0, 1, 0]])) == 0.5
    with pytest.raises(ValueError, match="only 0 and 1"):
        multi.update(np.array([[0.3, 1.0, 0.0]]), np.array([[1, 0, 0]]))
    loss = nn.Loss()
    loss.update(Tensor(np.float32(2.0)))
    loss.update(np.array([1.0, 3.0, 5.0]))
    assert loss.eval() == pytest.approx(2.5)
    with pytest.raises(ValueError, match="1-D"):
        loss.update(np.ones((2, 2)))
    pred, true = np.array([[1.0, 2.0], [3.0, 5.0]]), np.array([[1.5, 2.0], [2.0, 5.0]])
    assert nn.MAE()(pred, true) == pytest.approx(1.5 / 2)
    assert nn.MSE()(pred, true) == pytest.approx(1.25 / 2)
    assert nn.get_metric_fn("acc").__class__ is nn.Accuracy
    with pytest.raises(KeyError, match="unknown metric"):
        nn.get_metric_fn("auc")


# --------------------------------------------------------------------------- Model

def _toy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 0.5).astype(np.int32)
    return x, y


def _mlp(seed=3):
    graphspore.set_seed(seed)
    return nn.SequentialCell(nn.Dense(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dense(8, 3))


def test_model_eval_metrics_match_a_manual_evaluation():
    x, y = _toy()
    net = _mlp()
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True)            # reduction 'none'
    model = nn.Model(net, loss_fn, metrics={"accuracy", "loss"})
    assert isinstance(model.eval_network, nn.WithEvalCell)
    data = NumpySlicesDataset((x, y), shuffle=False).batch(6)          # batches 6, 6, 4
    result = model.eval(data)
    assert not net.training
    logits = net(Tensor(x)).asnumpy()
    assert result["accuracy"] == pytest.approx(np.mean(logits.argmax(1) == y))
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    per_sample = -logp[np.arange(16), y]
    batch_means = [per_sample[i:i + 6].mean() for i in (0, 6, 12)]
    assert result["loss"] == pytest.approx(np.mean(batch_means), rel=1e-5)
    # a metric instance, and a network without loss_fn: outputs and label go to the metric
    only_net = nn.Model(net, metrics={"top": nn.Accuracy()})
    assert only_net.eval(data) == {"top": result["accuracy"]}
    with pytest.raises(ValueError, match="loss_fn or an eval_network"):
        nn.Model(net, metrics={"loss"}).eval(data)
    with pytest.raises(ValueError, match="unknown metric"):
        nn.Model(net, loss_fn, metrics={"auc"})


def test_model_fit_evaluates_and_callbacks_see_both_phases():
    x, y = _toy()
    net = _mlp()
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    model = nn.Model(net, loss_fn, nn.Adam(net.trainable_params(), 0.05),
                     metrics={"accuracy"})
    data = NumpySlicesDataset((x, y), shuffle=False).batch(8)
    seen = []

    class Legacy(nn.Callback):                   # 1.x-style hooks still fire
        def step_end(self, run_context):
            cb = run_context.original_args()
            seen.append((cb.mode, cb["cur_step_num"]))

    results = []
    record = nn.LambdaCallback(
        on_train_epoch_end=lambda rc: results.append(rc.original_args().get("eval_results")))
    model.fit(4, data, data, valid_frequency=2, callbacks=[Legacy(), record])
    # evaluated after epochs 2 and 4: a new result then, the last one kept in between
    assert results[0] is None and results[1] is not None
    assert results[2] is results[1] and results[3] is not results[2]
    assert 0.0 <= results[-1]["accuracy"] <= 1.0
    assert seen[:2] == [("train", 1), ("train", 2)] and ("eval", 2) in seen
    assert sum(mode == "train" for mode, _ in seen) == 8
    with pytest.raises(ValueError, match="valid_frequency"):
        model.fit(1, data, data, valid_frequency=0)


def test_request_stop_ends_training():
    x, y = _toy()
    net = _mlp()
    model = nn.Model(net, nn.MSELoss(), nn.SGD(net.trainable_params(), 0.01))
    data = NumpySlicesDataset((x, np.zeros((16, 3), np.float32)), shuffle=False).batch(4)
    steps = []

    def stop_at_three(run_context):
        cb = run_context.original_args()
        steps.append(cb.cur_step_num)
        if cb.cur_step_num == 3:
            run_context.request_stop()

    model.train(5, data, callbacks=nn.LambdaCallback(on_train_step_end=stop_at_three))
    assert steps == [1, 2, 3]


# --------------------------------------------------------------------------- checkpoints

def test_model_checkpoint_steps_and_pruning(tmp_path):
    x, y = _toy()
    net = _mlp()
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = nn.Momentum(net.trainable_params(), 0.05, 0.9)
    model = nn.Model(net, loss_fn, opt)
    data = NumpySlicesDataset((x, y), shuffle=False).batch(4)           # 4 steps per epoch
    config = nn.CheckpointConfig(save_checkpoint_steps=3, keep_checkpoint_max=2,
                                 append_info=["epoch_num", "step_num"])
    checkpoint = nn.ModelCheckpoint(prefix="toy", directory=str(tmp_path / "ckpt"),
                                    config=config)
    listings = []
    spy = nn.LambdaCallback(on_train_step_end=lambda rc: listings.append(
        sorted(os.listdir(tmp_path / "ckpt")) if (tmp_path / "ckpt").exists() else []))
    model.train(2, data, callbacks=[checkpoint, spy])
    # saved at steps 3 (epoch 1 step 3) and 6 (epoch 2 step 2), and at the end (step 8);
    # at most two files kept, the oldest deleted first
    assert listings[2] == ["toy-1_3.ckpt"]
    assert listings[5] == ["toy-1_3.ckpt", "toy-2_2.ckpt"]
    assert listings[7] == ["toy-1_3.ckpt", "toy-2_2.ckpt"]
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["toy-2_2.ckpt", "toy-2_4.ckpt"]
    assert checkpoint.latest_ckpt_file_name == str(tmp_path / "ckpt" / "toy-2_4.ckpt")
    saved = graphspore.load_checkpoint(checkpoint.latest_ckpt_file_name)
    assert int(saved["step_num"].asnumpy()) == 8 and int(saved["epoch_num"].asnumpy()) == 2
    for name, param in model.train_network.parameters_dict().items():  # weights, BN, moments
        np.testing.assert_array_equal(saved[name].asnumpy(), param.asnumpy())
    assert {"1.moving_mean", "moments.0.weight", "global_step"} <= set(saved)
    # a second run with the same prefix writes toy_1-* and leaves the first run's files
    again = nn.ModelCheckpoint(prefix="toy", directory=str(tmp_path / "ckpt"),
                               config=nn.CheckpointConfig(save_checkpoint_steps=100))
    model.train(1, data, callbacks=again)
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["toy-2_2.ckpt", "toy-2_4.ckpt",
                                                     "toy_1-1_4.ckpt"]


def test_checkpoint_config_rules():
    config = nn.CheckpointConfig(save_checkpoint_steps=0, save_checkpoint_seconds=10,
                                 keep_checkpoint_max=0, keep_checkpoint_per_n_minutes=0)
    assert config.save_checkpoint_seconds == 10 and config.keep_checkpoint_max == 1
    assert nn.CheckpointConfig(save_checkpoint_steps=5).save_checkpoint_seconds is None
    with pytest.raises(ValueError, match="cannot all"):
        nn.CheckpointConfig(0, 0, 0, 0)
    with pytest.raises(ValueError, match="non-negative"):
        nn.CheckpointConfig(save_checkpoint_steps=-1)
    with pytest.raises(ValueError, match="prefix"):
        nn.ModelCheckpoint(prefix="a/b")
    with pytest.raises(TypeError, match="CheckpointConfig"):
        nn.ModelCheckpoint(config={"save_checkpoint_steps": 1})


@pytest.mark.parametrize("name,cls", [("relu6", nn.ReLU6), ("leakyrelu", nn.LeakyReLU),
                                      ("gelu", nn.GELU), ("elu", nn.ELU), ("hswish", nn.HSwish),
                                      ("hsigmoid", nn.HSigmoid), ("silu", nn.SiLU)])
def test_dense_takes_the_new_activations_by_name(name, cls):
    """`Dense(..., activation='gelu')` as in MindSpore: the named Cell after the product."""
    graphspore.set_seed(0)
    dense = nn.Dense(4, 3, activation=name)
    assert isinstance(dense.activation, cls)
    x = np.random.default_rng(1).standard_normal((2, 4)).astype(np.float32)
    w, b = dense.weight.asnumpy(), dense.bias.asnumpy()
    expected = cls()(Tensor(x @ w.T + b)).asnumpy()
    close(run(dense, x), expected)
    close(run(dense, x, mode="compiled"), expected)
