"""Compiled convolutions (gs.conv2d and its input/weight gradient primitives, codegen/
lower_conv.py) against float64 numpy loops over the taps, and their gradients against float64
central differences: groups, depthwise, strides, dilation, padding modes, 1x1, the fused
bias/ReLU epilogue, batches split over threads, second order and vmap."""
from __future__ import annotations

import numpy as np
import pytest

import graphspore as ms
from graphspore import Tensor, grad, jit, nn, ops, value_and_grad

vmap = ops.vmap
from graphspore.codegen import compile_graph


@pytest.fixture(autouse=True)
def graph_mode():
    ms.set_context(mode=ms.GRAPH_MODE)


def conv_reference(x, w, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    """float64 cross-correlation by a loop over the taps (NCHW, weight (O, C/groups, kh, kw))."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    n, c, h, width = x.shape
    o, per, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[1]), (pads[2], pads[3])))
    ho = (xp.shape[2] - (kh - 1) * dilation[0] - 1) // stride[0] + 1
    wo = (xp.shape[3] - (kw - 1) * dilation[1] - 1) // stride[1] + 1
    y = np.zeros((n, o, ho, wo))
    outputs = o // groups
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                top, left = i * dilation[0], j * dilation[1]
                patch = xp[:, g * per:(g + 1) * per,
                           top:top + (ho - 1) * stride[0] + 1:stride[0],
                           left:left + (wo - 1) * stride[1] + 1:stride[1]]
                y[:, g * outputs:(g + 1) * outputs] += np.einsum(
                    "nchw,oc->nohw", patch, w[g * outputs:(g + 1) * outputs, :, i, j])
    return y


# (input shape, weight shape, conv2d keyword arguments, explicit pads for the reference)
CASES = {
    "plain 3x3 valid": ((2, 3, 7, 6), (4, 3, 3, 3), dict(), (0, 0, 0, 0)),
    "same": ((2, 3, 6, 7), (5, 3, 3, 3), dict(pad_mode="same"), (1, 1, 1, 1)),
    "same stride 2 (extra row bottom)": ((2, 2, 8, 7), (3, 2, 3, 2),
                                         dict(pad_mode="same", stride=2), (0, 1, 0, 1)),
    "pad asymmetric, stride, dilation": ((2, 4, 9, 8), (6, 4, 3, 2),
                                         dict(pad_mode="pad", padding=(1, 0, 2, 1),
                                              stride=(2, 1), dilation=(1, 2)), (1, 0, 2, 1)),
    "groups 2": ((3, 4, 6, 6), (6, 2, 3, 3), dict(pad_mode="pad", padding=1, groups=2),
                 (1, 1, 1, 1)),
    "depthwise x2": ((2, 4, 7, 7), (8, 1, 3, 3), dict(pad_mode="same", groups=4),
                     (1, 1, 1, 1)),
    "padding wider than the taps reach": ((3, 3, 5, 6), (4, 3, 3, 3),
                                          dict(pad_mode="pad", padding=(3, 2, 0, 4)),
                                          (3, 2, 0, 4)),
    "1x1": ((2, 6, 5, 4), (3, 6, 1, 1), dict(), (0, 0, 0, 0)),
    "1x1 stride 2": ((2, 3, 5, 6), (4, 3, 1, 1), dict(stride=2), (0, 0, 0, 0)),
}


def _arguments(kwargs):
    stride, dilation = kwargs.get("stride", 1), kwargs.get("dilation", 1)
    pair = (lambda v: (v, v) if isinstance(v, int) else tuple(v))
    return pair(stride), pair(dilation), kwargs.get("groups", 1)


@pytest.mark.parametrize("case", list(CASES))
def test_forward_matches_loops(case):
    shape, wshape, kwargs, pads = CASES[case]
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal(shape), rng.standard_normal(wshape)
    stride, dilation, groups = _arguments(kwargs)
    got = jit(lambda a, b: ops.conv2d(a, b, **kwargs))(Tensor(x), Tensor(w)).asnumpy()
    np.testing.assert_allclose(got, conv_reference(x, w, stride, pads, dilation, groups),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", list(CASES))
def test_gradients_match_central_differences(case):
    """d/dx and d/dw of sum(sin(conv(x, w)) * G) along random directions, float64."""
    shape, wshape, kwargs, pads = CASES[case]
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal(shape), rng.standard_normal(wshape)
    stride, dilation, groups = _arguments(kwargs)
    weights = rng.standard_normal(conv_reference(x, w, stride, pads, dilation, groups).shape)

    def loss_reference(a, b):
        return float((np.sin(conv_reference(a, b, stride, pads, dilation, groups))
                      * weights).sum())
    step = jit(value_and_grad(lambda a, b: (ops.sin(ops.conv2d(a, b, **kwargs))
                                            * Tensor(weights)).sum(), (0, 1)))
    value, (dx, dw) = step(Tensor(x), Tensor(w))
    assert abs(float(value.asnumpy()) - loss_reference(x, w)) < 1e-10
    h = 1e-6
    for _ in range(3):
        u, v = rng.standard_normal(shape), rng.standard_normal(wshape)
        along_x = (loss_reference(x + h * u, w) - loss_reference(x - h * u, w)) / (2 * h)
        along_w = (loss_reference(x, w + h * v) - loss_reference(x, w - h * v)) / (2 * h)
        assert abs((dx.asnumpy() * u).sum() - along_x) < 1e-6 * max(1.0, abs(along_x))
        assert abs((dw.asnumpy() * v).sum() - along_w) < 1e-6 * max(1.0, abs(along_w))


def test_second_order_gradient():
    """grad of |d/dx L|^2 differentiates the input-gradient primitive (its VJP is conv2d and
    the weight gradient); checked against central differences of the first-order gradient."""
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((4, 1, 3, 3))
    kwargs = dict(pad_mode="pad", padding=1, stride=2, groups=2)

    def loss(a, b):
        return (ops.tanh(ops.conv2d(a, b, **kwargs)) ** 2).sum()
    first = jit(grad(loss, 0))
    second = jit(grad(lambda a, b: (grad(loss, 0)(a, b) ** 2).sum(), (0, 1)))
    dx, dw = second(Tensor(x), Tensor(w))

    def norm(a, b):
        return float((first(Tensor(a), Tensor(b)).asnumpy() ** 2).sum())
    h = 1e-5
    u, v = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    along_x = (norm(x + h * u, w) - norm(x - h * u, w)) / (2 * h)
    along_w = (norm(x, w + h * v) - norm(x, w - h * v)) / (2 * h)
    np.testing.assert_allclose((dx.asnumpy() * u).sum(), along_x, rtol=1e-6)
    np.testing.assert_allclose((dw.asnumpy() * v).sum(), along_w, rtol=1e-6)


def test_bias_relu_is_the_convolution_epilogue():
    """nn.Conv2d + ReLU compiles to one convolution kernel storing relu(acc + bias), and
    matches the float64 reference on a batch split over the thread pool."""
    rng = np.random.default_rng(4)
    net = nn.Conv2d(8, 16, 3, pad_mode="same", has_bias=True)
    forward = jit(lambda a: ops.relu(net(a)))
    x = rng.standard_normal((16, 8, 12, 12)).astype(np.float32)
    got = forward(Tensor(x)).asnumpy()
    bias = net.bias.asnumpy().astype(np.float64)[None, :, None, None]
    expected = np.maximum(conv_reference(x, net.weight.asnumpy(), pads=(1, 1, 1, 1)) + bias, 0)
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-5)
    loops = compile_graph(forward.program_for(Tensor(x)).graph).loops_text
    assert loops.count("kernel ") == 1, loops
    assert "conv2d(" in loops and "relu(add(acc, load bias[i0]))" in loops, loops


def test_cifar_sized_batch_float32():
    """3->64 3x3 'same' over 64 images: every image's products and the per-task partial
    weight gradients summed, float32 against float64 loops."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((64, 3, 16, 16)).astype(np.float32)
    w = rng.standard_normal((64, 3, 3, 3)).astype(np.float32)
    g = rng.standard_normal((64, 64, 16, 16)).astype(np.float32)
    step = jit(value_and_grad(lambda a, b: (ops.conv2d(a, b, pad_mode="same") * Tensor(g)).sum(),
                              (0, 1)))
    value, (dx, dw) = step(Tensor(x), Tensor(w))
    x64, w64, g64 = (a.astype(np.float64) for a in (x, w, g))
    y = conv_reference(x64, w64, pads=(1, 1, 1, 1))
    np.testing.assert_allclose(float(value.asnumpy()), (y * g64).sum(), rtol=1e-4)
    # exact adjoints: <dx, u> = <conv(u, w), g>, <dw, v> = <conv(x, v), g>
    u, v = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    along_x = (conv_reference(u, w64, pads=(1, 1, 1, 1)) * g64).sum()
    along_w = (conv_reference(x64, v, pads=(1, 1, 1, 1)) * g64).sum()
    np.testing.assert_allclose((dx.asnumpy().astype(np.float64) * u).sum(), along_x, rtol=1e-4)
    np.testing.assert_allclose((dw.asnumpy().astype(np.float64) * v).sum(), along_w, rtol=1e-4)


def test_vmap_over_images_and_over_filters():
    """Batched images with shared filters fold into N; batched filters become groups."""
    rng = np.random.default_rng(6)
    xs = rng.standard_normal((3, 2, 4, 6, 6))
    ws = rng.standard_normal((3, 6, 2, 3, 3))
    w = ws[0]

    def conv(a, b):
        return ops.conv2d(a, b, pad_mode="same", groups=2)
    shared = jit(vmap(conv, in_axes=(0, None)))(Tensor(xs), Tensor(w)).asnumpy()
    both = jit(vmap(conv, in_axes=(0, 0)))(Tensor(xs), Tensor(ws)).asnumpy()
    for i in range(3):
        np.testing.assert_allclose(shared[i], conv_reference(xs[i], w, pads=(1, 1, 1, 1),
                                                             groups=2), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(both[i], conv_reference(xs[i], ws[i], pads=(1, 1, 1, 1),
                                                           groups=2), rtol=1e-12, atol=1e-12)
    grads = jit(vmap(grad(lambda a, b: (ops.sin(conv(a, b))).sum(), 1)))(Tensor(xs), Tensor(ws))
    for i in range(3):
        single = jit(grad(lambda a, b: (ops.sin(conv(a, b))).sum(), 1))(Tensor(xs[i]),
                                                                        Tensor(ws[i]))
        np.testing.assert_allclose(grads.asnumpy()[i], single.asnumpy(), rtol=1e-12, atol=1e-12)


def test_weight_that_does_not_fit_is_a_value_error():
    x, w = Tensor(np.zeros((1, 4, 5, 5), np.float32)), Tensor(np.zeros((3, 3, 3, 3), np.float32))
    with pytest.raises(ValueError, match="does not fit"):
        jit(lambda a, b: ops.conv2d(a, b, groups=2))(x, w)


def test_gradient_of_a_weighted_sum_reads_the_weights_directly():
    """d/dy sum(y * G) is G: the broadcast 1 of the sum's cotangent folds away (simplify sees
    splats through broadcasts), so both gradient kernels read G itself, with no copy."""
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((4, 3, 8, 8)), rng.standard_normal((5, 3, 3, 3))
    g = rng.standard_normal((4, 5, 8, 8))
    step = jit(value_and_grad(lambda a, b, c: (ops.conv2d(a, b, pad_mode="same") * c).sum(),
                              (0, 1)))
    args = (Tensor(x), Tensor(w), Tensor(g))
    value, (dx, dw) = step(*args)
    loops = compile_graph(step.program_for(*args).graph).loops_text
    # one kernel: per image the forward product with the weighted sum as its epilogue and
    # both gradients (one pass over dy, one packing of the image)
    assert loops.count("kernel ") == 1 and "conv2d_backward(" in loops, loops
    assert "conv2d(a, b) in the same image loop" in loops, loops
    np.testing.assert_allclose(value.asnumpy(), (conv_reference(x, w, pads=(1, 1, 1, 1))
                                                 * g).sum(), rtol=1e-12)
    assert "mul(1.0" not in loops, loops
    v = rng.standard_normal(w.shape)
    np.testing.assert_allclose((dw.asnumpy() * v).sum(),
                               (conv_reference(x, v, pads=(1, 1, 1, 1)) * g).sum(), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_full_sum_is_the_convolution_epilogue(dtype):
    """sum(f(conv(x)) * G) over every element is taken from the product's registers: one
    kernel, the output never stored. Odd sizes (13 channels, 9x11 pixels) hit the row and
    column tile remainders; 5 images split over tasks; keep_dims and mean sum the same way;
    a sum over some axes only stays a reduce kernel of its own."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((5, 3, 9, 11)).astype(dtype)
    w = rng.standard_normal((13, 3, 3, 3)).astype(dtype)
    g = rng.standard_normal((5, 13, 9, 11)).astype(dtype)
    bias = rng.standard_normal(13).astype(dtype)
    y = conv_reference(x, w, pads=(1, 1, 1, 1)) + bias.astype(np.float64)[None, :, None, None]
    expected = (np.maximum(y, 0) * g).sum()
    tolerance = 1e-12 if dtype is np.float64 else 1e-6
    scale = np.abs(np.maximum(y, 0) * g).sum()      # rounding grows with the terms' size

    def weighted(a, b, c, d):
        return ops.relu(ops.conv2d(a, b, pad_mode="same") + d.reshape(1, 13, 1, 1)) * c
    programs = {"sum": (lambda a, b, c, d: weighted(a, b, c, d).sum(), expected),
                "keep_dims": (lambda a, b, c, d: weighted(a, b, c, d).sum(keepdims=True),
                              expected),
                "mean": (lambda a, b, c, d: weighted(a, b, c, d).mean(), expected / g.size)}
    args = tuple(Tensor(a) for a in (x, w, g, bias))
    for name, (function, reference) in programs.items():
        compiled = jit(function)
        got = compiled(*args).asnumpy()
        np.testing.assert_allclose(got.reshape(()), reference, rtol=0,
                                   atol=tolerance * scale * reference / expected, err_msg=name)
        loops = compile_graph(compiled.program_for(*args).graph).loops_text
        assert "conv2d(" in loops and "[0] = add(load " in loops, loops
        assert "reduce" not in loops, loops
    partial = jit(lambda a, b, c, d: weighted(a, b, c, d).sum(axis=(1, 2, 3)))
    np.testing.assert_allclose(partial(*args).asnumpy(),
                               (np.maximum(y, 0) * g).sum(axis=(1, 2, 3)), rtol=0,
                               atol=tolerance * scale)
    assert "reduce_" in compile_graph(partial.program_for(*args).graph).loops_text


FORWARD_BACKWARD_CASES = {
    "same, 13 channels, 9x11": ((5, 3, 9, 11), (13, 3, 3, 3), dict(pad_mode="same"),
                                (1, 1, 1, 1)),
    "groups 2, stride 2, asymmetric pads": ((3, 4, 9, 8), (6, 2, 3, 2),
                                            dict(pad_mode="pad", padding=(1, 0, 2, 1),
                                                 stride=2, groups=2), (1, 0, 2, 1)),
    "1x1 (x is the columns)": ((4, 6, 5, 7), (3, 6, 1, 1), dict(), (0, 0, 0, 0)),
    "one image, its products split over the threads": ((1, 3, 32, 32), (64, 3, 3, 3),
                                                      dict(pad_mode="same"), (1, 1, 1, 1)),
}


@pytest.mark.parametrize("case", list(FORWARD_BACKWARD_CASES))
@pytest.mark.parametrize("returns_y", [False, True])
def test_forward_and_both_gradients_in_one_image_loop(case, returns_y):
    """value_and_grad of sum(conv(x, w) * G): the forward product (its sum taken from the
    registers, or y stored when it is also returned) runs in the gradients' image loop, so
    each image is packed once and G read once. Value, y and both gradients against float64
    loops (the gradients through the exact adjoints <dx, u> = <conv(u, w), G>, <dw, v> =
    <conv(x, v), G>)."""
    shape, wshape, kwargs, pads = FORWARD_BACKWARD_CASES[case]
    rng = np.random.default_rng(12)
    x, w = rng.standard_normal(shape), rng.standard_normal(wshape)
    stride, dilation, groups = _arguments(kwargs)
    y = conv_reference(x, w, stride, pads, dilation, groups)
    g = rng.standard_normal(y.shape)
    def loss(a, b, c):
        return (ops.conv2d(a, b, **kwargs) * c).sum()
    if returns_y:           # y stored by the forward (an output), the gradients of the loss
        step = jit(lambda a, b, c: (ops.conv2d(a, b, **kwargs), grad(loss, (0, 1))(a, b, c)))
        got_y, (dx, dw) = step(Tensor(x), Tensor(w), Tensor(g))
        np.testing.assert_allclose(got_y.asnumpy(), y, rtol=1e-12, atol=1e-12)
    else:
        step = jit(value_and_grad(loss, (0, 1)))
        value, (dx, dw) = step(Tensor(x), Tensor(w), Tensor(g))
        np.testing.assert_allclose(float(value.asnumpy()), (y * g).sum(), rtol=1e-12)
    u, v = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    np.testing.assert_allclose((dx.asnumpy() * u).sum(), (conv_reference(
        u, w, stride, pads, dilation, groups) * g).sum(), rtol=1e-11)
    np.testing.assert_allclose((dw.asnumpy() * v).sum(), (conv_reference(
        x, v, stride, pads, dilation, groups) * g).sum(), rtol=1e-11)
    loops = compile_graph(step.program_for(Tensor(x), Tensor(w), Tensor(g)).graph).loops_text
    assert "in the same image loop" in loops, loops


def test_float16_convolution_accumulates_in_float32():
    """float16 operands are widened to float32 for the kernel and rounded once, as the
    primitive's reference computes."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 4, 6, 6)).astype(np.float16)
    w = rng.standard_normal((6, 2, 3, 3)).astype(np.float16)
    got = jit(lambda a, b: ops.conv2d(a, b, pad_mode="same", groups=2))(Tensor(x), Tensor(w))
    assert got.dtype == ms.float16
    expected = conv_reference(x.astype(np.float32), w.astype(np.float32), pads=(1, 1, 1, 1),
                              groups=2).astype(np.float32).astype(np.float16)
    np.testing.assert_allclose(got.asnumpy().astype(np.float32), expected.astype(np.float32),
                               rtol=2e-3, atol=2e-3)


def test_one_gradient_alone_and_both_in_one_pass_agree():
    """The combined backward kernel (input and weight gradients reading each image's dy
    once) gives what the two separate kernels give, as each gradient alone compiles to."""
    rng = np.random.default_rng(9)
    x, w = rng.standard_normal((6, 4, 9, 9)), rng.standard_normal((8, 2, 3, 3))

    def loss(a, b):
        return (ops.sin(ops.conv2d(a, b, pad_mode="pad", padding=(0, 1, 1, 2), stride=2,
                                   groups=2))).sum()
    both = jit(grad(loss, (0, 1)))(Tensor(x), Tensor(w))
    only_x = jit(grad(loss, 0))(Tensor(x), Tensor(w))
    only_w = jit(grad(loss, 1))(Tensor(x), Tensor(w))
    np.testing.assert_allclose(both[0].asnumpy(), only_x.asnumpy(), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(both[1].asnumpy(), only_w.asnumpy(), rtol=1e-13, atol=1e-13)


def test_large_images_take_blas_per_image():
    """Per-image products above the register tiles' size go to BLAS (the weight gradient
    accumulating with beta = 1 over images); results still match the float64 loops."""
    from graphspore.codegen.matmul import TILES_MAX_FMAS
    rng = np.random.default_rng(10)
    x, w = rng.standard_normal((2, 32, 24, 24)), rng.standard_normal((64, 32, 3, 3))
    assert 64 * 24 * 24 * 32 * 9 > TILES_MAX_FMAS
    g = rng.standard_normal((2, 64, 24, 24))
    bias = rng.standard_normal(64)
    net = nn.Conv2d(32, 64, 3, pad_mode="same", has_bias=True, weight_init=Tensor(w),
                    bias_init=Tensor(bias))
    step = jit(value_and_grad(lambda a, b: (net(a) * b).sum(), 0, net.weight))
    value, (dx, dw) = step(Tensor(x), Tensor(g))
    y = conv_reference(x, w, pads=(1, 1, 1, 1)) + bias[None, :, None, None]
    np.testing.assert_allclose(float(value.asnumpy()), (y * g).sum(), rtol=1e-10)
    u, v = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    np.testing.assert_allclose((dx.asnumpy() * u).sum(),
                               (conv_reference(u, w, pads=(1, 1, 1, 1)) * g).sum(), rtol=1e-10)
    np.testing.assert_allclose((dw.asnumpy() * v).sum(),
                               (conv_reference(x, v, pads=(1, 1, 1, 1)) * g).sum(), rtol=1e-10)
