"""Train a LeNet-style CNN on scikit-learn's 8x8 digits, reshaped to (N, 1, 8, 8).

conv(1->6, 3x3, same) -> ReLU -> maxpool 2x2 -> conv(6->16, 3x3, same) -> ReLU -> maxpool 2x2
-> flatten (16*2*2) -> dense 64 -> ReLU -> dense 10. Conv2d is a matmul on an im2col kernel
and MaxPool2d a pooling kernel (each with gradient kernels), so the whole step, backward
included, compiles to one native call like the MLP's. The high-level `Model.train` API drives it here.

    python examples/train_lenet.py
"""
import numpy as np
from sklearn.datasets import load_digits

import graphspore as mindspore
from graphspore import nn
from graphspore.dataset import NumpySlicesDataset


class LeNet(nn.Cell):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, pad_mode="same", has_bias=True)
        self.conv2 = nn.Conv2d(6, 16, 3, pad_mode="same", has_bias=True)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Dense(16 * 2 * 2, 64)
        self.fc2 = nn.Dense(64, num_classes)

    def construct(self, x):
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        x = self.relu(self.fc1(self.flatten(x)))
        return self.fc2(x)


def main(epochs=10, verbose=True):
    mindspore.set_context(mode=mindspore.GRAPH_MODE)
    mindspore.set_seed(0)
    digits = load_digits()
    images = (digits.data / 16).astype(np.float32).reshape(-1, 1, 8, 8)
    labels = digits.target.astype(np.int32)
    train_set = NumpySlicesDataset((images, labels), ["image", "label"])
    train_set = train_set.batch(32, drop_remainder=True)
    eval_set = NumpySlicesDataset((images, labels), ["image", "label"], shuffle=False)
    eval_set = eval_set.batch(599)                       # 1797 = 3 * 599: one signature

    net = LeNet()
    loss_fn = nn.CrossEntropyLoss()
    optimizer = nn.Momentum(net.trainable_params(), learning_rate=0.05, momentum=0.9)
    model = nn.Model(net, loss_fn, optimizer, metrics={"accuracy"})
    monitor = nn.LossMonitor() if verbose else nn.LossMonitor(stream=_Silent())
    model.train(epochs, train_set, callbacks=[monitor])
    acc = model.eval(eval_set)["accuracy"]
    if verbose:
        print(f"train accuracy: {acc:.4f}")
    return dict(accuracy=acc, losses=monitor.losses)


class _Silent:
    def write(self, text):
        return len(text)

    def flush(self):
        pass


if __name__ == "__main__":
    main()
