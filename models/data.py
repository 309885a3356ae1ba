"""Labelled image data for training and evaluating the small networks: digits, .npz files, folders.

Every loader returns a :class:`Split` of float32 NCHW images in [0, 1] and int64 labels, with a
*fixed* held-out test set: a stratified 25% drawn with its own seed (0), independent of the
training seed, so every run and every PE kind is scored on the same images.

* default: scikit-learn's 8x8 handwritten digits (shipped with scikit-learn, nothing downloaded),
  pixel values 0..16 scaled to [0, 1];
* ``*.npz``: arrays ``x`` (N, H, W) or (N, C, H, W) -- uint8 is scaled by 1/255, floats are taken
  as they are -- and ``y`` (N,) integer labels;
* a folder: one subfolder per class (sorted names are the classes), holding PNG/JPG/BMP/GIF
  images of one size, read as grayscale (the mean of the colour channels) in [0, 1].

Bad data raises :class:`ValueError` with a one-line message naming the problem and the fix.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["IMAGE_SUFFIXES", "TEST_FRACTION", "Split", "load_data", "load_digits", "load_folder",
           "load_npz"]

TEST_FRACTION = 0.25
#: Seed of the held-out split; fixed so the test set does not move with the training seed.
SPLIT_SEED = 0
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


@dataclass(frozen=True)
class Split:
    """Training and held-out test images (float32 NCHW in [0, 1]) with int64 labels.

    ``digest`` identifies the data exactly (it keys the training cache); ``classes`` names the
    label values 0..len(classes)-1.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...]
    digest: str

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """Batch-first shape of one image, e.g. ``(1, 1, 8, 8)``."""
        return (1, *self.x_train.shape[1:])


def _split(name: str, x: np.ndarray, y: np.ndarray, classes: tuple[str, ...]) -> Split:
    """Stratified fixed split of NCHW float images ``x`` and labels ``y`` (0..C-1)."""
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y, minlength=len(classes))
    if len(y) < 2 * len(classes) or counts.min() < 2:
        raise ValueError(f"data {name!r} needs at least 2 images of every class to hold out a test "
                         f"set; class {classes[int(counts.argmin())]!r} has {int(counts.min())}")
    test_n = max(len(classes), round(TEST_FRACTION * len(y)))
    idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=test_n, stratify=y,
                                           random_state=SPLIT_SEED)
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = y.astype(np.int64)
    digest = hashlib.sha256()
    for part in (x, y, np.array(classes)):
        digest.update(part.tobytes())
    return Split(name, torch.from_numpy(x[idx_train]), torch.from_numpy(y[idx_train]),
                 torch.from_numpy(x[idx_test]), torch.from_numpy(y[idx_test]), classes,
                 digest.hexdigest())


def load_digits() -> Split:
    """scikit-learn's 1797 8x8 digits as (N, 1, 8, 8) in [0, 1], 10 classes."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = bunch.images[:, None].astype(np.float32) / 16.0
    return _split("digits", x, bunch.target, tuple(str(c) for c in bunch.target_names))


def _labels(name: str, y: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Integer labels remapped to 0..C-1, with the original values as class names."""
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"{name}: `y` must be a 1-D integer label array, not {y.dtype} of shape "
                         f"{y.shape}")
    values, y = np.unique(y, return_inverse=True)
    if len(values) < 2:
        raise ValueError(f"{name}: `y` holds a single class; a classifier needs at least two")
    return y, tuple(str(v) for v in values)


def load_npz(path: str | Path) -> Split:
    """Images ``x`` (N, H, W) or (N, C, H, W) and labels ``y`` (N,) from an ``.npz`` file."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {str(path)!r} as .npz ({exc}); save it with "
                         "numpy.savez(path, x=images, y=labels)") from None
    missing = [key for key in ("x", "y") if key not in arrays]
    if missing:
        raise ValueError(f"{str(path)!r} lacks the array(s) {', '.join(missing)}; it must hold "
                         f"`x` (images) and `y` (labels), not {', '.join(arrays) or 'nothing'}")
    x, y = arrays["x"], arrays["y"]
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.dtype.kind not in "uif":
        raise ValueError(f"{str(path)!r}: `x` must be numeric (N, H, W) or (N, C, H, W), not "
                         f"{x.dtype} of shape {arrays['x'].shape}")
    if len(x) != len(y):
        raise ValueError(f"{str(path)!r}: `x` holds {len(x)} images but `y` {len(y)} labels; "
                         "give one label per image")
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    if not np.isfinite(x).all():
        raise ValueError(f"{str(path)!r}: `x` holds NaN or infinite values")
    labels, classes = _labels(str(path), y)
    return _split(path.stem, x, labels, classes)


def _read_gray(path: Path) -> np.ndarray:
    """One image as a float (H, W) array in [0, 1] (colour channels averaged, alpha dropped)."""
    import matplotlib.image

    try:
        img = np.asarray(matplotlib.image.imread(path))
    except Exception as exc:  # PIL/matplotlib raise many types for corrupt files
        raise ValueError(f"cannot read image {str(path)!r}: {type(exc).__name__}") from None
    img = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
    if img.ndim == 3:
        img = img[..., :3].mean(axis=2)
    return img


def load_folder(path: str | Path) -> Split:
    """Images under ``path/<class>/``, one subfolder per class, all of one size."""
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"data folder {str(root)!r} does not exist or is not a folder; give a "
                         "folder with one subfolder of images per class, or an .npz file")
    try:
        class_dirs = sorted(p for p in root.iterdir() if p.is_dir())
    except OSError as exc:
        raise ValueError(f"cannot read data folder {str(root)!r}: {exc.strerror}") from None
    images, labels = [], []
    for label, folder in enumerate(class_dirs):
        for file in sorted(folder.iterdir()):
            if file.suffix.lower() in IMAGE_SUFFIXES:
                images.append(_read_gray(file))
                labels.append(label)
    if len(class_dirs) < 2 or not images:
        raise ValueError(f"data folder {str(root)!r} needs at least two class subfolders holding "
                         f"{'/'.join(s[1:] for s in IMAGE_SUFFIXES)} images")
    sizes = {img.shape for img in images}
    if len(sizes) > 1:
        raise ValueError(f"images under {str(root)!r} differ in size ({', '.join(map(str, sorted(sizes)))}); "
                         "resize them to one size")
    return _split(root.name, np.stack(images)[:, None], np.array(labels),
                  tuple(p.name for p in class_dirs))


def load_data(path: str | Path | None = None) -> Split:
    """The digits split (``path`` None), an ``.npz`` file, or an image folder."""
    if path is None:
        return load_digits()
    path = Path(path)
    if path.suffix.lower() == ".npz":
        if not path.is_file():
            raise ValueError(f"data file {str(path)!r} does not exist; check the path")
        return load_npz(path)
    return load_folder(path)
