"""The idx file format of MNIST, Fashion-MNIST, KMNIST and EMNIST (LeCun's ``*-idx{1,3}-ubyte[.gz]``): headers,
completeness and arrays, with numpy and gzip only, so that the config check reads it before any job without torch.

Written here rather than taken from torchvision: ``torchvision.datasets.mnist.read_image_file`` opens the
uncompressed file only (the published files and the shipped ones are gzip), and reads a truncated file without
naming it. The arrays equal torchvision's reader on the decompressed files (tests/unit/test_idx.py).
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

# The Fashion-MNIST test set, shipped inside the package with its licence (featflow/data/fashion_mnist/).
SHIPPED = "fashion_mnist"
SPLIT_PREFIX = {"train": "train", "test": "t10k"}
KINDS = {"images": "images-idx3-ubyte", "labels": "labels-idx1-ubyte"}
# idx type codes this reader accepts (the data sets above are all unsigned bytes).
DTYPES = {0x08: np.uint8}


def shipped_folder() -> Path:
    """The folder of the shipped Fashion-MNIST test set (read when ``datasets.<name>.path`` is not set)."""
    return Path(__file__).parent / "data" / SHIPPED  # not importlib.resources: featflow.data imports torch


def folder(path: str | None) -> Path:
    """The folder an idx data set reads: its ``path``, or the shipped set when it has none."""
    return Path(path) if path else shipped_folder()


def find(folder: str | Path, split: str, kind: str) -> Path | None:
    """The ``{train,t10k}-{images-idx3,labels-idx1}-ubyte`` file of a split in ``folder``, gzip or not."""
    stem = f"{SPLIT_PREFIX[split]}-{KINDS[kind]}"
    for name in (stem, stem + ".gz"):
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    return None


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def header(path: str | Path) -> tuple[np.dtype, tuple[int, ...]]:
    """Element type and shape declared by an idx file's header."""
    path = Path(path)
    with _open(path) as stream:
        head = stream.read(4)
        if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in DTYPES:
            raise ValueError(f"{path}: not an idx file of unsigned bytes (magic {head.hex()!r})")
        dims = stream.read(4 * head[3])
    if len(dims) < 4 * head[3]:
        raise ValueError(f"{path}: truncated idx header")
    return np.dtype(DTYPES[head[2]]), struct.unpack(f">{head[3]}I", dims)


def _stored_size(path: Path) -> int:
    """The uncompressed byte count of a file: gzip's trailer (ISIZE, the size modulo 2^32) or the file size."""
    if path.suffix != ".gz":
        return path.stat().st_size
    with open(path, "rb") as stream:
        stream.seek(-4, 2)
        return struct.unpack("<I", stream.read(4))[0]


def problem(path: str | Path) -> str | None:
    """What makes an idx file unreadable or incomplete (None when its size is the one its header declares).
    Cheap: the header and, for gzip, the trailer only; a gzip file cut short has no trailer of its size."""
    path = Path(path)
    try:
        dtype, shape = header(path)
    except ValueError as err:
        return str(err)
    except (OSError, EOFError) as err:
        return f"{path}: unreadable ({err})"
    expected = 4 + 4 * len(shape) + dtype.itemsize * int(np.prod(shape))
    if _stored_size(path) != expected % 2**32:
        return f"{path}: truncated or damaged (its header declares shape {shape}, {expected} bytes)"
    return None


def read(path: str | Path) -> np.ndarray:
    """The array of an idx file, refused with the file's name when it is shorter or longer than declared."""
    path = Path(path)
    try:
        dtype, shape = header(path)
        with _open(path) as stream:
            data = stream.read()
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: truncated or damaged ({err}); replace the file") from err
    offset = 4 + 4 * len(shape)
    if len(data) != offset + dtype.itemsize * int(np.prod(shape)):
        raise ValueError(f"{path}: {len(data) - offset} data bytes where its header declares shape {shape}")
    return np.frombuffer(data, dtype, offset=offset).reshape(shape)


def class_names(folder: str | Path, labels: np.ndarray) -> tuple[str, ...]:
    """Names from ``classes.txt`` in the folder (one per line, label order), else the label values."""
    listing = Path(folder) / "classes.txt"
    if listing.is_file():
        return tuple(line.strip() for line in listing.read_text().splitlines() if line.strip())
    return tuple(str(c) for c in range(int(labels.max()) + 1))


def folder_problem(folder: str | Path) -> str | None:
    """What is missing or broken in an idx folder: the test images and labels are needed, the train pair is
    optional (without it the test set is split into train and test), and every file present must be complete."""
    splits = [s for s in SPLIT_PREFIX if find(folder, s, "images") or find(folder, s, "labels")]
    if "test" not in splits:
        return f"'{folder}' holds no t10k-images-idx3-ubyte[.gz] / t10k-labels-idx1-ubyte[.gz]; expected an idx folder"
    for split in splits:
        files = {kind: find(folder, split, kind) for kind in KINDS}
        missing = [f"{SPLIT_PREFIX[split]}-{KINDS[k]}[.gz]" for k, f in files.items() if f is None]
        if missing:
            return f"'{folder}' lacks {', '.join(missing)}"
        problems = [p for p in map(problem, files.values()) if p]
        if problems:
            return problems[0] + "; replace it (e.g. from Debian's dataset-fashion-mnist)"
        if header(files["images"])[1][0] != header(files["labels"])[1][0]:
            return f"'{folder}': {split} images and labels differ in count"
    return None
