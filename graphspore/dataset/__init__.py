"""`mindspore.dataset`: host-side data pipelines (sources, map/batch/shuffle/repeat, sharding)
and the `vision` and `transforms` operations the beginner tutorials use."""
from .engine import Dataset, NumpySlicesDataset, GeneratorDataset
from .mnist import MnistDataset
from . import vision, transforms

__all__ = ["Dataset", "NumpySlicesDataset", "GeneratorDataset", "MnistDataset", "vision",
           "transforms"]
