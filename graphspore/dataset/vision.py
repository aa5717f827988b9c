"""`mindspore.dataset.vision`: image transforms on HWC numpy arrays (host code, as MindSpore's
dataset pipeline runs on the host): Rescale, Normalize, HWC2CHW, Resize."""
from __future__ import annotations

from enum import Enum

import numpy as np


class Inter(Enum):
    """Interpolation modes of `Resize` (graphspore implements NEAREST and LINEAR)."""
    NEAREST = 0
    LINEAR = 1
    BILINEAR = 1
    CUBIC = 2
    BICUBIC = 2
    AREA = 3
    PILCUBIC = 4
    ANTIALIAS = 5


class _ImageTransform:
    """A callable on one image (numpy array, or anything `np.asarray` takes)."""

    def __call__(self, image):
        return self.apply(np.asarray(image))

    def apply(self, image: np.ndarray) -> np.ndarray:
        raise NotImplementedError(type(self).__name__)


def _check_hw_or_hwc(name: str, image: np.ndarray) -> None:
    if image.ndim not in (2, 3):
        raise ValueError(f"{name}: the image must be <H, W> or <H, W, C>, got shape "
                         f"{image.shape}")


class Rescale(_ImageTransform):
    """`image * rescale + shift`, as float32."""

    def __init__(self, rescale, shift):
        self.rescale, self.shift = float(rescale), float(shift)

    def apply(self, image):
        return (image.astype(np.float32) * np.float32(self.rescale)
                + np.float32(self.shift)).astype(np.float32)


class Normalize(_ImageTransform):
    """`(image - mean) / std` per channel (the last axis when `is_hwc`, else the first),
    as float32."""

    def __init__(self, mean, std, is_hwc=True):
        self.mean = np.asarray(mean, np.float32).reshape(-1)
        self.std = np.asarray(std, np.float32).reshape(-1)
        if self.mean.shape != self.std.shape:
            raise ValueError(f"Normalize: mean has {self.mean.size} values, std "
                             f"{self.std.size}")
        if np.any(self.std <= 0):
            raise ValueError(f"Normalize: std must be positive, got {self.std.tolist()}")
        self.is_hwc = bool(is_hwc)

    def apply(self, image):
        _check_hw_or_hwc("Normalize", image)
        image = image.astype(np.float32)
        channels = 1 if image.ndim == 2 else image.shape[-1 if self.is_hwc else 0]
        if self.mean.size not in (1, channels):
            raise ValueError(f"Normalize: {self.mean.size} mean values for an image with "
                             f"{channels} channels")
        shape = (-1,) if image.ndim == 2 or self.is_hwc else (-1, 1, 1)
        return ((image - self.mean.reshape(shape)) / self.std.reshape(shape)).astype(np.float32)


class HWC2CHW(_ImageTransform):
    """<H, W, C> to <C, H, W>; an <H, W> image is returned unchanged."""

    def apply(self, image):
        _check_hw_or_hwc("HWC2CHW", image)
        return image if image.ndim == 2 else np.ascontiguousarray(image.transpose(2, 0, 1))


class Resize(_ImageTransform):
    """Resize to `size` (h, w), or with an int, the shorter side to `size` keeping the
    aspect ratio. LINEAR is OpenCV's bilinear (pixel centres aligned), NEAREST its nearest."""

    def __init__(self, size, interpolation=Inter.LINEAR):
        if isinstance(size, int):
            sizes = (size,)
        elif isinstance(size, (list, tuple)) and len(size) in (1, 2):
            sizes = tuple(size)
        else:
            raise TypeError(f"Resize: size must be an int or a sequence of 1 or 2 ints, "
                            f"got {size!r}")
        if any(not isinstance(s, int) or s <= 0 for s in sizes):
            raise ValueError(f"Resize: sizes must be positive ints, got {size!r}")
        if not isinstance(interpolation, Inter):
            raise TypeError(f"Resize: interpolation must be a vision.Inter, got "
                            f"{interpolation!r}")
        if interpolation not in (Inter.LINEAR, Inter.NEAREST):
            raise ValueError(f"Resize: interpolation {interpolation.name} is not supported by "
                             f"graphspore; use Inter.LINEAR or Inter.NEAREST")
        self.size, self.interpolation = sizes, interpolation

    def _target(self, h: int, w: int) -> tuple[int, int]:
        if len(self.size) == 2:
            return self.size
        s = self.size[0]
        return (s, int(w * s / h)) if h <= w else (int(h * s / w), s)

    def apply(self, image):
        _check_hw_or_hwc("Resize", image)
        h, w = image.shape[:2]
        out_h, out_w = self._target(h, w)
        if self.interpolation is Inter.NEAREST:
            rows = np.minimum((np.arange(out_h) * (h / out_h)).astype(np.int64), h - 1)
            cols = np.minimum((np.arange(out_w) * (w / out_w)).astype(np.int64), w - 1)
            return np.ascontiguousarray(image[rows][:, cols])
        y0, y1, fy = _linear_taps(h, out_h)
        x0, x1, fx = _linear_taps(w, out_w)
        data = image.astype(np.float64)
        fy = fy.reshape((-1, 1) + (1,) * (image.ndim - 2))
        fx = fx.reshape((1, -1) + (1,) * (image.ndim - 2))
        top = data[y0][:, x0] * (1 - fx) + data[y0][:, x1] * fx
        bottom = data[y1][:, x0] * (1 - fx) + data[y1][:, x1] * fx
        out = top * (1 - fy) + bottom * fy
        if image.dtype.kind in "iu":
            info = np.iinfo(image.dtype)
            out = np.clip(np.rint(out), info.min, info.max)
        return out.astype(image.dtype)


def _linear_taps(size: int, out: int):
    """Source indices and weights of bilinear resampling with aligned pixel centres."""
    src = (np.arange(out) + 0.5) * (size / out) - 0.5
    src = np.clip(src, 0, size - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, size - 1)
    return lo, hi, src - lo


__all__ = ["Inter", "Rescale", "Normalize", "HWC2CHW", "Resize"]
