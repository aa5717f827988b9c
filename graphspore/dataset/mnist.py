"""`MnistDataset`: the MNIST idx files of a directory, as `mindspore.dataset.MnistDataset`.

The idx format: a big-endian header (two zero bytes, a type code, the number of dimensions,
then one uint32 per dimension) followed by the data. Images (`*-images-idx3-ubyte`) are uint8
[N, 28, 28], labels (`*-labels-idx1-ubyte`) uint8 [N]. Rows are `image` uint8 [28, 28, 1]
(HWC) and `label` uint32, MindSpore's column names and dtypes.
"""
from __future__ import annotations

import os
from typing import Iterator

import numpy as np

from .engine import Dataset, Row, check_shards, shard_order

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4",
              0x0E: ">f8"}
_PREFIXES = {"train": ("train",), "test": ("t10k",), "all": ("train", "t10k")}


def read_idx(path: str) -> np.ndarray:
    """An idx file as an array of its declared shape and type."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise ValueError(f"MnistDataset: {path} is not an idx file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(data[4:header], ">u4"))
    dtype = np.dtype(_IDX_TYPES[data[2]])
    count = int(np.prod(shape, dtype=np.int64))
    if len(data) - header < count * dtype.itemsize:
        raise ValueError(f"MnistDataset: {path} is truncated: its header declares shape "
                         f"{shape}, it holds {len(data) - header} bytes of data")
    return np.frombuffer(data, dtype, count, header).reshape(shape).astype(dtype.newbyteorder("="))


def _find(directory: str, prefix: str, kind: str) -> str:
    for name in (f"{prefix}-{kind}-idx{3 if kind == 'images' else 1}-ubyte",
                 f"{prefix}-{kind}.idx{3 if kind == 'images' else 1}-ubyte"):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"MnistDataset: no {prefix}-{kind}-idx"
                            f"{3 if kind == 'images' else 1}-ubyte in {directory}")


class MnistDataset(Dataset):
    """MNIST rows (`image`, `label`) from `dataset_dir`; `usage` 'train', 'test' or 'all'
    (default: 'all'), shuffled unless `shuffle=False`, `num_samples` rows at most."""

    def __init__(self, dataset_dir, usage=None, num_samples=None, num_parallel_workers=None,
                 shuffle=None, sampler=None, num_shards=None, shard_id=None, cache=None):
        if not os.path.isdir(dataset_dir):
            raise ValueError(f"MnistDataset: dataset_dir {dataset_dir!r} is not a directory")
        usage = "all" if usage is None else usage
        if usage not in _PREFIXES:
            raise ValueError(f"MnistDataset: usage must be 'train', 'test' or 'all', "
                             f"got {usage!r}")
        images, labels = [], []
        for prefix in _PREFIXES[usage]:
            if usage == "all" and not os.path.isfile(os.path.join(
                    dataset_dir, f"{prefix}-images-idx3-ubyte")):
                continue
            image = read_idx(_find(dataset_dir, prefix, "images"))
            label = read_idx(_find(dataset_dir, prefix, "labels"))
            if image.ndim != 3 or label.ndim != 1 or len(image) != len(label):
                raise ValueError(f"MnistDataset: {prefix} images {image.shape} and labels "
                                 f"{label.shape} do not match ([N, H, W] and [N])")
            images.append(image)
            labels.append(label)
        if not images:
            raise FileNotFoundError(f"MnistDataset: no MNIST idx files in {dataset_dir}")
        super().__init__(None, ["image", "label"])
        self.images = np.concatenate(images)[..., None]
        self.labels = np.concatenate(labels).astype(np.uint32)
        self.num_rows = len(self.labels) if num_samples is None else \
            min(len(self.labels), int(num_samples))
        self.shuffle_rows = True if shuffle is None else bool(shuffle)
        self.shards = check_shards(num_shards, shard_id)

    def _order(self):
        n = len(self.labels)
        order = self._rng.permutation(n) if self.shuffle_rows else range(n)
        return shard_order(order, self.shards)[:self.num_rows]

    def _rows(self) -> Iterator[Row]:
        for i in self._order():
            yield self.images[i], self.labels[i]

    def get_dataset_size(self) -> int:
        return len(shard_order(range(len(self.labels)), self.shards)[:self.num_rows])


def write_idx(path: str, array: np.ndarray) -> None:
    """Write `array` (uint8) as an idx file: what MNIST's files hold (tests and demos)."""
    array = np.ascontiguousarray(array, np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    with open(path, "wb") as f:
        f.write(header + array.tobytes())
