"""Pooling modes as MindSpore 2.x defines them: ceil_mode (the last window starts inside the
input or its low padding), explicit padding, dilation, return_indices (int64, flattened per
(N, C) plane), count_include_pad and divisor_override; nn.MaxPool2d/AvgPool2d, ops.max_pool2d/
avg_pool2d and the MaxPool/AvgPool/MaxPoolWithArgmax(V2) primitives, eagerly and compiled,
against numpy references written from MindSpore's formulas; gradients by central finite
differences in float64; vmap against a loop."""
import numpy as np
import pytest

import graphspore
from graphspore import Tensor, jit, nn, ops

MODES = ["eager", "compiled"]


def _out(size, k, s, d, low, high, ceil):
    """MindSpore's output size (MaxPool3DWithArgmax / AvgPool3D infer)."""
    span = size + low + high - d * (k - 1) - 1
    if not ceil:
        return span // s + 1
    out = int(np.ceil(span / s)) + 1
    return out - 1 if (out - 1) * s >= size + low else out


def max_pool_reference(x, k, s, pads, d=(1, 1), ceil=False):
    """(values, indices): each window's maximum over the taps inside the input and the
    flattened position h * W + w of its first maximum in row-major tap order."""
    n, c, h, w = x.shape
    ho = _out(h, k[0], s[0], d[0], pads[0], pads[1], ceil)
    wo = _out(w, k[1], s[1], d[1], pads[2], pads[3], ceil)
    values = np.empty((n, c, ho, wo), x.dtype)
    indices = np.empty((n, c, ho, wo), np.int64)
    for a in range(ho):
        for b in range(wo):
            best = np.full((n, c), -np.inf)
            at = np.zeros((n, c), np.int64)
            for i in range(k[0]):
                for j in range(k[1]):
                    r, q = a * s[0] - pads[0] + i * d[0], b * s[1] - pads[2] + j * d[1]
                    if 0 <= r < h and 0 <= q < w:
                        better = x[:, :, r, q] > best
                        best = np.where(better, x[:, :, r, q], best)
                        at = np.where(better, r * w + q, at)
            values[:, :, a, b], indices[:, :, a, b] = best, at
    return values, indices


def avg_pool_reference(x, k, s, pads, ceil=False, count_include_pad=True, divisor=0):
    """Window sums over: divisor if non-zero, else the window clipped to the padded input
    (count_include_pad) or to the input."""
    n, c, h, w = x.shape
    ho = _out(h, k[0], s[0], 1, pads[0], pads[1], ceil)
    wo = _out(w, k[1], s[1], 1, pads[2], pads[3], ceil)
    out = np.empty((n, c, ho, wo), x.dtype)
    for a in range(ho):
        for b in range(wo):
            r0, q0 = a * s[0] - pads[0], b * s[1] - pads[2]
            r1, q1 = r0 + k[0], q0 + k[1]
            window = x[:, :, max(r0, 0):min(r1, h), max(q0, 0):min(q1, w)]
            if divisor:
                count = divisor
            elif count_include_pad:
                count = (min(r1, h + pads[1]) - r0) * (min(q1, w + pads[3]) - q0)
            else:
                count = window.shape[2] * window.shape[3]
            out[:, :, a, b] = window.sum(axis=(2, 3)) / count
    return out


def call(mode, f, *args):
    tensors = [Tensor(a) for a in args]
    out = f(*tensors) if mode == "eager" else jit(f)(*tensors)
    return tuple(o.asnumpy() for o in out) if isinstance(out, tuple) else out.asnumpy()


@pytest.fixture
def image(rng):
    return rng.normal(size=(2, 3, 7, 6)).astype(np.float32)


def test_ceil_mode_drops_a_window_that_would_start_in_the_high_padding():
    """H=5, k=2, s=2, padding 1: ceil((5+2-2)/2)+1 = 4, but window 3 would start at 3*2-1 = 5,
    past the input: 3 windows, as MindSpore's infer. Floor mode also gives 3; W=6 gives 4."""
    x = Tensor(np.zeros((1, 1, 5, 6), np.float32))
    pool = nn.MaxPool2d(2, 2, pad_mode="pad", padding=1, ceil_mode=True)
    assert pool(x).shape == (1, 1, 3, 4)
    assert nn.AvgPool2d(2, 2, pad_mode="pad", padding=1, ceil_mode=True)(x).shape == (1, 1, 3, 4)
    assert nn.MaxPool2d(3, 2, pad_mode="pad", padding=0, ceil_mode=True)(x).shape == (1, 1, 2, 3)
    assert nn.MaxPool2d(3, 2, pad_mode="pad", padding=0)(x).shape == (1, 1, 2, 2)


MAX_CASES = [  # kernel, stride, padding (h, w), dilation, ceil_mode
    ((2, 2), (2, 2), (0, 0), (1, 1), True),
    ((3, 3), (2, 2), (1, 1), (1, 1), True),
    ((3, 2), (2, 1), (1, 0), (1, 1), False),
    ((2, 2), (1, 2), (1, 1), (2, 1), True),
    ((3, 3), (3, 3), (1, 0), (1, 1), True),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kernel,stride,padding,dilation,ceil", MAX_CASES)
def test_max_pool2d_values_and_indices(mode, image, kernel, stride, padding, dilation, ceil):
    pads = (padding[0], padding[0], padding[1], padding[1])
    values, indices = max_pool_reference(image, kernel, stride, pads, dilation, ceil)
    pool = nn.MaxPool2d(kernel, stride, pad_mode="pad", padding=padding, dilation=dilation,
                        return_indices=True, ceil_mode=ceil)
    got_values, got_indices = call(mode, pool, image)
    np.testing.assert_array_equal(got_values, values)
    assert got_indices.dtype == np.int64
    np.testing.assert_array_equal(got_indices, indices)
    only = call(mode, lambda a: ops.max_pool2d(a, kernel, stride, padding, dilation,
                                               ceil_mode=ceil), image)
    np.testing.assert_array_equal(only, values)
    both = call(mode, lambda a: ops.max_pool2d(a, kernel, stride, padding, dilation, True, ceil),
                image)
    np.testing.assert_array_equal(both[1], indices)


def test_indices_pick_the_first_maximum_and_index_the_unpadded_plane():
    x = np.zeros((1, 1, 3, 3), np.float32)
    x[0, 0, 2, 2] = 5.0                                  # a lone maximum in the last window
    values, indices = nn.MaxPool2d(2, 2, pad_mode="pad", padding=1, return_indices=True)(
        Tensor(x))
    np.testing.assert_array_equal(values.asnumpy()[0, 0], [[0, 0], [0, 5]])
    np.testing.assert_array_equal(indices.asnumpy()[0, 0], [[0, 1], [3, 8]])  # ties: first


AVG_CASES = [  # kernel, stride, (top, bottom, left, right), ceil_mode, count_include_pad, divisor
    ((3, 3), (2, 2), (1, 1, 1, 1), True, True, 0),
    ((3, 3), (2, 2), (1, 1, 1, 1), True, False, 0),
    ((2, 3), (2, 2), (0, 0, 1, 1), True, True, 0),
    ((3, 3), (2, 2), (1, 1, 1, 1), False, True, 5),
    ((2, 2), (3, 2), (1, 1, 0, 0), True, False, 0),
    ((3, 2), (1, 1), (0, 0, 0, 0), False, True, 0),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kernel,stride,pads,ceil,include,divisor", AVG_CASES)
def test_avg_pool2d_divisors(mode, image, kernel, stride, pads, ceil, include, divisor):
    expected = avg_pool_reference(image, kernel, stride, pads, ceil, include, divisor)
    got = call(mode, lambda a: ops.avg_pool2d(a, kernel, stride, pads, ceil, include, divisor),
               image)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    if pads[0] == pads[1] and pads[2] == pads[3]:
        pool = nn.AvgPool2d(kernel, stride, pad_mode="pad", padding=(pads[0], pads[2]),
                            ceil_mode=ceil, count_include_pad=include,
                            divisor_override=divisor or None)
        np.testing.assert_allclose(call(mode, pool, image), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_same_mode_and_primitives(mode, image):
    """'same' pads (total max((ceil(H/s)-1)*s + k - H, 0), extra at the bottom/right); the
    AvgPool kernel's 'same' padding does not count in the divisor, AvgPool3D's (any flag
    set) does."""
    same = (1, 1, 0, 1)                                  # H=7, W=6, k=3, s=2
    values, indices = max_pool_reference(image, (3, 3), (2, 2), same)
    np.testing.assert_array_equal(call(mode, nn.MaxPool2d(3, 2, "same"), image), values)
    np.testing.assert_array_equal(call(mode, ops.MaxPool(3, 2, "same"), image), values)
    out, mask = call(mode, ops.MaxPoolWithArgmax(3, 2, "same"), image)
    assert mask.dtype == np.int32
    np.testing.assert_array_equal(mask, indices)
    exclude = avg_pool_reference(image, (3, 3), (2, 2), same, count_include_pad=False)
    np.testing.assert_allclose(call(mode, nn.AvgPool2d(3, 2, "same"), image), exclude,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(call(mode, ops.AvgPool(3, 2, "same"), image), exclude,
                               rtol=1e-5, atol=1e-6)
    include = avg_pool_reference(image, (3, 3), (2, 2), same, ceil=True)
    np.testing.assert_allclose(call(mode, nn.AvgPool2d(3, 2, "same", ceil_mode=True), image),
                               include, rtol=1e-5, atol=1e-6)
    v2 = ops.MaxPoolWithArgmaxV2(3, 2, pads=1, ceil_mode=True, argmax_type=graphspore.int32)
    values, indices = max_pool_reference(image, (3, 3), (2, 2), (1, 1, 1, 1), ceil=True)
    out, argmax = call(mode, v2, image)
    np.testing.assert_array_equal(out, values)
    assert argmax.dtype == np.int32
    np.testing.assert_array_equal(argmax, indices)


@pytest.mark.parametrize("mode", MODES)
def test_unbatched_input(mode, image):
    values, indices = max_pool_reference(image[:1], (3, 3), (2, 2), (1, 1, 1, 1), ceil=True)
    pool = nn.MaxPool2d(3, 2, "pad", 1, return_indices=True, ceil_mode=True)
    got_values, got_indices = call(mode, pool, image[0])
    np.testing.assert_array_equal(got_values, values[0])
    np.testing.assert_array_equal(got_indices, indices[0])
    avg = nn.AvgPool2d(2, 2, ceil_mode=True)
    np.testing.assert_allclose(call(mode, avg, image[0]),
                               avg_pool_reference(image[:1], (2, 2), (2, 2), (0,) * 4, True)[0],
                               rtol=1e-5, atol=1e-6)


def _numeric_gradient(f, x, cotangent, step=1e-6):
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += step
        down[i] -= step
        grad[i] = (np.sum(cotangent * f(up)) - np.sum(cotangent * f(down))) / (2 * step)
    return grad


@pytest.mark.parametrize("mode", MODES)
def test_gradients_by_central_differences(mode, rng):
    """Max pooling routes the cotangent to each window's argmax; average pooling spreads it
    over the window's taps divided by that window's divisor."""
    x = rng.permutation(2 * 2 * 5 * 6).reshape(2, 2, 5, 6).astype(np.float64) / 7  # no ties
    cases = [
        (nn.MaxPool2d(3, 2, "pad", 1, ceil_mode=True),
         lambda a: max_pool_reference(a, (3, 3), (2, 2), (1, 1, 1, 1), ceil=True)[0]),
        (nn.MaxPool2d(2, 2, "pad", 1, dilation=2, ceil_mode=True),
         lambda a: max_pool_reference(a, (2, 2), (2, 2), (1, 1, 1, 1), (2, 2), True)[0]),
        (nn.AvgPool2d(3, 2, "pad", 1, ceil_mode=True, count_include_pad=False),
         lambda a: avg_pool_reference(a, (3, 3), (2, 2), (1, 1, 1, 1), True, False)),
        (nn.AvgPool2d(2, 2, ceil_mode=True, divisor_override=3),
         lambda a: avg_pool_reference(a, (2, 2), (2, 2), (0,) * 4, True, True, 3)),
    ]
    for pool, reference in cases:
        cotangent = rng.normal(size=reference(x).shape)
        loss = lambda a: (pool(a) * Tensor(cotangent)).sum()  # noqa: E731
        grad = graphspore.grad(loss) if mode == "eager" else jit(graphspore.grad(loss))
        np.testing.assert_allclose(grad(Tensor(x)).asnumpy(),
                                   _numeric_gradient(reference, x, cotangent), atol=1e-6)


def test_vmap_of_pooling_with_modes(rng):
    x = rng.normal(size=(3, 2, 2, 5, 5)).astype(np.float32)

    def f(a):
        values, indices = ops.max_pool2d(a, 2, 2, 1, return_indices=True, ceil_mode=True)
        return values + ops.avg_pool2d(a, 2, 2, 1, True, False), indices
    batched = ops.vmap(f)(Tensor(x))
    for i in range(3):
        values, indices = f(Tensor(x[i]))
        np.testing.assert_allclose(batched[0].asnumpy()[i], values.asnumpy(), rtol=1e-6)
        np.testing.assert_array_equal(batched[1].asnumpy()[i], indices.asnumpy())


def test_mindspore_argument_checks():
    with pytest.raises(ValueError, match="pad_mode is not 'pad'"):
        nn.MaxPool2d(2, 2, ceil_mode=True)
    with pytest.raises(ValueError, match="pad_mode is not 'pad'"):
        nn.MaxPool2d(2, 2, return_indices=True)
    with pytest.raises(ValueError, match="padding must be 0"):
        nn.MaxPool2d(2, 2, padding=1)
    with pytest.raises(ValueError, match="half the kernel"):
        nn.MaxPool2d(2, 2, "pad", padding=2)
    with pytest.raises(ValueError, match="half the kernel"):
        ops.max_pool2d(Tensor(np.zeros((1, 1, 4, 4), np.float32)), 3, padding=2)
    with pytest.raises(ValueError, match="divisor_override"):
        nn.AvgPool2d(2, divisor_override=0)
    with pytest.raises(ValueError, match="pad_mode"):
        nn.AvgPool2d(2, pad_mode="full")
    with pytest.raises(ValueError, match="rank 3 or 4"):
        nn.AvgPool2d(2)(Tensor(np.zeros((4, 4), np.float32)))
    with pytest.raises(ValueError, match="does not fit"):
        ops.avg_pool2d(Tensor(np.zeros((1, 1, 2, 2), np.float32)), 3)
    with pytest.raises(TypeError, match="kernel_size"):
        nn.MaxPool2d(2.5)
