"""Seed tutorial 002 (使用mindspore对函数求导), unchanged but for the imports and one line.

The tutorial calls `grad(loss, 3)(W, b)` with two of the loss's four arguments, which fails
in every framework (TypeError: missing 'W', 'b'); here it passes all four, as its other calls
do. Its printed f''(1) = 3 is wrong: f(x) = x**3 - 2x + 1 has f''(1) = 6.
"""
import graphspore as mindspore  # noqa: F401  (the tutorial imports from `mindspore`)
from graphspore import grad, Tensor
from graphspore import ops, set_seed
from graphspore import value_and_grad


f = lambda x: x**3 - 2*x + 1

dfdx = grad(f)
d2fdx = grad(grad(f))

print(f(Tensor(1.0)))
print(dfdx(Tensor(1.0)))
print(d2fdx(Tensor(1.0)))

set_seed(0)

inputs = ops.randn((4, 3))
targets = Tensor([True, True, False, True])

W, b = ops.randn((3,)), ops.randn((1,))

def loss(inputs, targets, W, b):
    preds = ops.sigmoid(ops.matmul(inputs, W) + b)
    logit_loss = preds * targets + (1 - preds) * (1 - targets)
    return -ops.log(logit_loss).sum()

print(f"inputs: {inputs}")
print(f"targets: {targets}")
print(f"W: {W}")
print(f"b: {b}")

x_grad = grad(loss, grad_position=0)(inputs, targets, W, b)
print(f'x_grad: {x_grad}')

# The tutorial differentiates w.r.t. the bool `targets` here; that is a TypeError in
# graphspore (gradients exist for float tensors only), so it is shown and skipped.
try:
    y_grad = grad(loss, 1)(inputs, targets, W, b)
    print(f'y_grad: {y_grad}')
except TypeError as exc:
    print(f'y_grad: TypeError: {exc}')

W_grad = grad(loss, 2)(inputs, targets, W, b)
print(f'W_grad: {W_grad}')

b_grad = grad(loss, 3)(inputs, targets, W, b)
print(f'b_grad: {b_grad}')

(W_grad, b_grad) = grad(loss, (2, 3))(inputs, targets, W, b)
print(f'W_grad: {W_grad}')
print(f'b_grad: {b_grad}')

def multi_loss(inputs, targets, W, b):
    loss1 = loss(inputs, targets, W, b)
    loss2 = (W ** 2).sum()
    return loss1, loss2

(W_grad, b_grad) = grad(multi_loss, (2, 3))(inputs, targets, W, b)
print(f'W_grad: {W_grad}, b_grad: {b_grad}')

def multi_loss_2(inputs, targets, W, b):
    loss1 = loss(inputs, targets, W, b)
    loss2 = (W ** 2).sum()
    return loss1, ops.stop_gradient(loss2)

(W_grad, b_grad) = grad(multi_loss_2, (2, 3))(inputs, targets, W, b)
print(f'W_grad: {W_grad}, b_grad: {b_grad}')

(W_grad, b_grad) = grad(multi_loss, (2, 3), has_aux=True)(inputs, targets, W, b)
print(f'W_grad: {W_grad}, b_grad: {b_grad}')

loss, (W_grad, b_grad) = value_and_grad(loss, (2, 3))(inputs, targets, W, b)

print(f"loss: {loss}")
print(f'W_grad: {W_grad}, b_grad: {b_grad}')
