"""The papers' benchmark data sets: adding, sMNIST/psMNIST (IDX, gzipped IDX, NPZ), sCIFAR10
(python batches), digit_then_noise (MNIST or scikit-learn digits). Files are written here by
hand, byte by byte, independently of the readers."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import dynprobe
from dynprobe.errors import DatasetError
from dynprobe.plugins.datasets.files import read_idx
from dynprobe.tasks import SequenceData


def _idx_bytes(array: np.ndarray) -> bytes:
    code = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C}[array.dtype]
    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.tobytes()


def _mnist_arrays(n: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)


def _write_mnist(folder: Path, *, gz: bool = False, split: str = "t10k", n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    x, y = _mnist_arrays(n)
    for kind, array, rank in (("images", x, 3), ("labels", y, 1)):
        data = _idx_bytes(array)
        name = f"{split}-{kind}-idx{rank}-ubyte"
        (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(data) if gz else data)
    return x, y


# ---------------------------------------------------------------- adding
def test_adding_has_one_cue_per_half_and_sums_the_cued_values():
    data = dynprobe.dataset("adding", T=101, samples=200, seed=3)
    assert isinstance(data, SequenceData) and data.inputs.shape == (200, 101, 2) and data.targets.shape == (200, 1)
    values, cue = data.inputs[..., 0], data.inputs[..., 1]
    assert torch.equal(cue[:, :50].sum(1), torch.ones(200)) and torch.equal(cue[:, 50:].sum(1), torch.ones(200))
    assert torch.allclose((values * cue).sum(1, keepdim=True), data.targets)
    assert float(values.min()) >= 0 and float(values.max()) < 1
    assert torch.equal(dynprobe.dataset("adding", T=101, samples=200, seed=3).inputs, data.inputs)
    assert not torch.equal(dynprobe.dataset("adding", T=101, samples=200, seed=4).inputs, data.inputs)


# ---------------------------------------------------------------- MNIST
@pytest.mark.parametrize("gz", [False, True], ids=["idx", "idx.gz"])
def test_smnist_reads_idx_files_in_scan_line_order(tmp_path, gz):
    x, y = _write_mnist(tmp_path, gz=gz)
    data = dynprobe.dataset("smnist", root=str(tmp_path))
    assert data.inputs.shape == (6, 784, 1) and data.num_classes == 10
    assert abs(float(data.inputs[2, 28 * 3 + 5, 0]) - x[2, 3, 5] / 255.0) < 1e-7
    assert data.targets.tolist() == y.tolist() and data.attrs["source"].endswith(".gz" if gz else "ubyte")
    chunked = dynprobe.dataset("smnist", root=str(tmp_path), pixels_per_step=28, samples=4)
    assert chunked.inputs.shape == (4, 28, 28) and torch.allclose(chunked.inputs[1], torch.tensor(x[1] / 255.0).float())


def test_smnist_from_npz_and_env_var(tmp_path, monkeypatch):
    x, y = _mnist_arrays(5)
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=y, x_test=x[:3], y_test=y[:3])
    monkeypatch.setenv("DYNPROBE_DATA", str(tmp_path))
    assert dynprobe.dataset("smnist", split="train").samples == 5
    assert dynprobe.dataset("smnist").targets.tolist() == y[:3].tolist()


def test_psmnist_applies_one_fixed_permutation_from_its_seed(tmp_path):
    x, _ = _write_mnist(tmp_path / "mnist")
    a = dynprobe.dataset("psmnist", root=str(tmp_path), permutation_seed=7)
    b = dynprobe.dataset("psmnist", root=str(tmp_path), permutation_seed=7)
    c = dynprobe.dataset("psmnist", root=str(tmp_path), permutation_seed=8)
    plain = dynprobe.dataset("smnist", root=str(tmp_path))
    assert torch.equal(a.inputs, b.inputs) and not torch.equal(a.inputs, c.inputs)
    perm = np.random.default_rng(7).permutation(784)
    assert torch.equal(a.inputs[:, :, 0], plain.inputs[:, perm, 0])  # same permutation for every image


def test_missing_mnist_is_one_line_saying_where_and_what(tmp_path):
    with pytest.raises(DatasetError) as info:
        dynprobe.dataset("smnist", root=str(tmp_path))
    msg = str(info.value)
    assert "\n" not in msg and str(tmp_path) in msg and "t10k-images-idx3-ubyte" in msg and "mnist.npz" in msg
    assert isinstance(info.value, OSError)


@pytest.mark.parametrize(
    "mangle, fragment",
    [(lambda b: b"\x08\x03" + b[2:], "not an IDX file"), (lambda b: b[:-5], "truncated"),
     (lambda b: b[:6], "header truncated"), (lambda b: b"\x1f\x8b" + b[2:], "corrupt gzip")],
    ids=["magic", "short-data", "short-header", "bad-gzip"],
)
def test_malformed_idx_is_refused(tmp_path, mangle, fragment):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(mangle(_idx_bytes(_mnist_arrays(2)[0])))
    with pytest.raises(DatasetError, match=fragment):
        read_idx(path)


def test_idx_reads_big_endian_ints(tmp_path):
    arr = np.arange(-3, 9, dtype=">i4").reshape(3, 4)
    (tmp_path / "ints.idx").write_bytes(_idx_bytes(arr))
    out = read_idx(tmp_path / "ints.idx")
    assert out.tolist() == arr.tolist() and out.dtype == np.dtype("int32")


# ---------------------------------------------------------------- CIFAR-10
def _write_cifar(folder: Path, names: list[str], n: int = 4) -> dict[str, tuple[np.ndarray, list[int]]]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for i, name in enumerate(names):
        data = np.random.default_rng(i).integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(v) for v in np.random.default_rng(100 + i).integers(0, 10, n)]
        with (folder / name).open("wb") as f:
            pickle.dump({b"batch_label": b"x", b"labels": labels, b"data": data, b"filenames": [b"a"] * n}, f, protocol=2)
        out[name] = (data, labels)
    return out


def test_scifar10_reads_python_batches_as_gray_scan_lines(tmp_path):
    written = _write_cifar(tmp_path / "cifar-10-batches-py", ["test_batch"])
    data = dynprobe.dataset("scifar10", root=str(tmp_path))
    raw, labels = written["test_batch"]
    assert data.inputs.shape == (4, 1024, 1) and data.targets.tolist() == labels
    r, g, b = (int(raw[1, c * 1024 + 32 * 5 + 7]) for c in range(3))  # row 5, column 7 of image 1
    assert abs(float(data.inputs[1, 32 * 5 + 7, 0]) - (0.2989 * r + 0.5870 * g + 0.1140 * b) / 255) < 1e-6


def test_scifar10_train_needs_all_five_batches_and_refuses_code(tmp_path):
    _write_cifar(tmp_path, ["data_batch_1", "data_batch_2"])
    with pytest.raises(DatasetError, match="data_batch_3, data_batch_4, data_batch_5"):
        dynprobe.dataset("scifar10", root=str(tmp_path), split="train")
    _write_cifar(tmp_path, [f"data_batch_{i}" for i in range(3, 6)])
    assert dynprobe.dataset("scifar10", root=str(tmp_path), split="train").samples == 20
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "test_batch").write_bytes(pickle.dumps({"data": __import__("os").getcwd}, protocol=2))
    with pytest.raises(DatasetError, match="refusing to load"):
        dynprobe.dataset("scifar10", root=str(evil))



def test_a_cifar_batch_whose_array_claims_10_to_the_12_bytes_is_one_line(tmp_path):
    """The pickled array's shape is rewritten to 10⁶ × 10⁶ over 6 bytes of data (issue 16.7):
    one line naming the file, no allocation of a terabyte, no MemoryError traceback."""
    raw = pickle.dumps({b"data": np.zeros((2, 3), dtype=np.uint8), b"labels": [0, 1]}, protocol=2)
    shape = b"K\x02K\x03\x86"  # the (2, 3) tuple as protocol 2 writes it
    assert raw.count(shape) == 1
    million = b"J" + (10**6).to_bytes(4, "little")
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(raw.replace(shape, million + million + b"\x86"))
    with pytest.raises(DatasetError, match=r"test_batch: not a CIFAR-10 python batch \(buffer size does not match"):
        dynprobe.dataset("scifar10", root=str(tmp_path))


# ---------------------------------------------------------------- digit_then_noise
def test_digit_then_noise_from_mnist_files(tmp_path):
    x, y = _write_mnist(tmp_path)
    data = dynprobe.dataset("digit_then_noise", T=20, samples=50, sigma_x=0.5, root=str(tmp_path), seed=1)
    assert data.inputs.shape == (50, 21, 784) and data.attrs["source"].startswith("mnist:")
    first = data.inputs[:, 0].numpy()
    images = x.reshape(6, -1) / 255.0
    which = [int(np.argmin(np.abs(images - f).sum(1))) for f in first]
    assert np.allclose(first, images[which], atol=1e-6) and data.targets.tolist() == [int(y[i]) for i in which]
    noise = data.inputs[:, 1:]
    assert abs(float(noise.std()) - 0.5) < 0.01 and abs(float(noise.mean())) < 0.01


def test_digit_then_noise_falls_back_to_sklearn_digits(tmp_path):
    pytest.importorskip("sklearn")
    data = dynprobe.dataset("digit_then_noise", T=3, samples=10, root=str(tmp_path))
    assert data.attrs["source"] == "sklearn.datasets.load_digits (8x8)" and data.inputs.shape == (10, 4, 64)
    assert float(data.inputs[:, 0].max()) <= 1.0 and data.inputs[:, 0].min() >= 0
    with pytest.raises(DatasetError, match="digit_then_noise"):
        dynprobe.dataset("digit_then_noise", source="mnist", root=str(tmp_path))
