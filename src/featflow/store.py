"""The one place that reads and writes featflow's HDF5 files, tables and figures.

Every write goes to ``<name>.tmp`` and is renamed into place only when it finished, so a crash never leaves a
half-written file behind; a failed write removes its temporary file, and one that ran out of room says "disk
full while writing <file>" (:class:`DiskFullError`). Every HDF5 file carries ``featflow_schema`` and
``featflow_kind`` attributes that readers check, plus the provenance attributes of the stage that wrote it (see
:mod:`featflow.repro`). Chunked datasets carry a Fletcher-32 checksum per chunk, so a corrupted chunk is refused
on read with the file's name instead of being read back silently.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np

SCHEMA_VERSION = 1
CHUNK_BYTES = 4 << 20  # bytes of stored rows per chunk of iter_rows: a memory knob, in no cache key


class StoreError(ValueError):
    """A file is missing, truncated, foreign, or of the wrong kind."""


RERUN = "delete it and rerun the stage that wrote it"


def corrupted(path: str | os.PathLike, what: str, why: str, fix: str = RERUN) -> str:
    """The one wording of a refused intermediate, HDF5 or not: the file, what it is, why, and the fix."""
    return f"{path}: corrupted {what} ({why}); {fix}"


def _tmp_path(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


class DiskFullError(OSError):
    """A write ran out of room (no space left, quota, file size limit); its temporary file is removed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.errno = errno.ENOSPC


_NO_ROOM = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file size limit reached (ulimit -f)",
}
_MIB = 1 << 20


def _no_room(err: BaseException, tmp: Path) -> str | None:
    """Why a failed write to ``tmp`` ran out of room, or None when it did not.

    Libraries say so in different ways: an ``OSError`` with its errno (pandas, PIL, h5py's data writes), the errno
    inside the text of a RuntimeError (h5py's closes: "errno = 28"), or not at all (torch.save: "unexpected pos
    576 vs 534"); for the last, the file system's free space and the process's file size limit decide, read
    while the temporary file still holds its space."""
    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.errno in _NO_ROOM:
            return _NO_ROOM[cause.errno]
        text = str(cause)
        for code, why in _NO_ROOM.items():
            if f"errno = {code}," in text or f"[Errno {code}]" in text or os.strerror(code) in text:
                return why
        cause = cause.__cause__ or cause.__context__
    try:
        size = tmp.stat().st_size
        stats = os.statvfs(tmp.parent)
    except OSError:
        return None
    free = (stats.f_bfree if os.geteuid() == 0 else stats.f_bavail) * stats.f_frsize
    if free < _MIB:
        return f"{_NO_ROOM[errno.ENOSPC]}: {free // 1024} KiB free on {tmp.parent}"
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (ImportError, OSError, ValueError):  # no resource module (Windows)
        return None
    if limit != resource.RLIM_INFINITY and size >= limit - _MIB:
        return f"{_NO_ROOM[errno.EFBIG]}: {limit} bytes"
    return None


def _remove(tmp: Path) -> None:
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` only if the block succeeds.

    On any failure the temporary file is removed; a failure for want of room (``ENOSPC``, ``EDQUOT``, ``EFBIG``,
    in whatever form the writing library reports it) is raised as :class:`DiskFullError` "disk full while writing
    <path>", the original error chained."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(final)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException as err:
        why = _no_room(err, tmp) if isinstance(err, Exception) else None
        _remove(tmp)
        if why is None:
            raise
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        message = f"disk full while writing {final} ({why}; {type(err).__name__}: {first}); free space and rerun"
        raise DiskFullError(message) from err
    finally:
        _remove(tmp)


@contextmanager
def _unraisable(origin: str) -> Iterator[list[BaseException]]:
    """Collect the exceptions Python can only print ("Exception ignored in ...") whose source names ``origin``:
    h5py raises a failed chunk flush in a dataset's ``__dealloc__``, where no caller sees it, and the file would
    otherwise be renamed into place with the lost chunk."""
    caught: list[BaseException] = []
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if unraisable.exc_value is not None and origin in f"{unraisable.err_msg} {unraisable.object!r}":
            caught.append(unraisable.exc_value)
        previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield caught
    finally:
        sys.unraisablehook = previous


def _attr_value(value: Any) -> Any:
    """HDF5 attributes hold scalars, strings and arrays; anything nested is stored as JSON text."""
    if isinstance(value, (str, int, float, bool, np.integer, np.floating, np.bool_)):
        return value
    if isinstance(value, np.ndarray):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def set_attrs(node: h5py.HLObject, attrs: Mapping[str, Any]) -> None:
    """Store ``attrs`` on an HDF5 file, group or dataset (None values skipped, nested ones as JSON)."""
    for key, value in attrs.items():
        if value is None:
            continue
        node.attrs[key] = _attr_value(value)


@contextmanager
def h5_writer(path: str | os.PathLike, kind: str, attrs: Mapping[str, Any]) -> Iterator[h5py.File]:
    """Open a new HDF5 file for incremental writing; it appears at ``path`` only when the block succeeds.

    Parameters
    ----------
    path : final file path.
    kind : what the file holds (``"activations"``, ``"dictionary"``, ...); readers check it.
    attrs : provenance and stage attributes stored on the root group.
    """
    with atomic_path(path) as tmp, _unraisable("h5py") as ignored:
        # No chunk cache: every chunk is written when h5py is asked to, so a write error (a full disk) is raised
        # there; with HDF5 2.0's cache it surfaced in __dealloc__ and the next flush or close crashed the process
        # (SIGSEGV, 33 of 33 fill levels of a tiny tmpfs), leaving the temporary file. Not slower: chunks are
        # written whole by create_array and append_rows' batches.
        with h5py.File(tmp, "w", rdcc_nbytes=0) as handle:
            handle.attrs["featflow_schema"] = SCHEMA_VERSION
            handle.attrs["featflow_kind"] = kind
            set_attrs(handle, attrs)
            yield handle
        if ignored:
            raise StoreError(f"{path}: h5py failed while writing it: {ignored[0]}") from ignored[0]


def create_array(
    group: h5py.Group,
    name: str,
    data: np.ndarray | None = None,
    *,
    shape: tuple[int, ...] | None = None,
    dtype: Any = None,
    attrs: Mapping[str, Any] | None = None,
) -> h5py.Dataset:
    """Create a chunked, compressed (lzf), checksummed (Fletcher-32) dataset, from ``data`` or empty."""
    if data is not None:
        data = np.asarray(data)
        shape, dtype = data.shape, data.dtype
    if shape is None:
        raise ValueError(f"create_array('{name}'): give either data or shape")
    if np.dtype(dtype).kind in "OU":
        dset = group.create_dataset(name, data=np.asarray(data, dtype=h5py.string_dtype()))
    elif len(shape) == 0 or int(np.prod(shape)) == 0:
        dset = group.create_dataset(name, data=data, shape=shape, dtype=dtype)
    else:
        dset = group.create_dataset(
            name, data=data, shape=shape, dtype=dtype, chunks=True, compression="lzf", fletcher32=True
        )
    if attrs:
        set_attrs(dset, attrs)
    return dset


def append_rows(group: h5py.Group, name: str, rows: np.ndarray, chunk_bytes: int = 1 << 20) -> h5py.Dataset:
    """Append ``rows`` along axis 0 of dataset ``name``, created on first use as :func:`create_array` would
    (chunked, lzf, Fletcher-32) but resizable, with about ``chunk_bytes`` per chunk; streams write batch by batch."""
    rows = np.asarray(rows)
    if name not in group:
        per_row = max(1, int(np.prod(rows.shape[1:])) * rows.dtype.itemsize)
        chunk = (max(1, min(4096, chunk_bytes // per_row)), *rows.shape[1:])
        return group.create_dataset(
            name,
            data=rows,
            maxshape=(None, *rows.shape[1:]),
            chunks=chunk,
            compression="lzf",
            fletcher32=True,
        )
    dset = group[name]
    start = dset.shape[0]
    dset.resize(start + rows.shape[0], axis=0)
    dset[start:] = rows
    return dset


def _write_tree(group: h5py.Group, tree: Mapping[str, Any]) -> None:
    for key, value in tree.items():
        if isinstance(value, Mapping):
            _write_tree(group.create_group(key), value)
        else:
            create_array(group, key, value)


def write_h5(path: str | os.PathLike, kind: str, arrays: Mapping[str, Any], attrs: Mapping[str, Any]) -> None:
    """Write a (possibly nested) mapping of arrays atomically; nested mappings become groups."""
    with h5_writer(path, kind, attrs) as handle:
        _write_tree(handle, arrays)


@contextmanager
def h5_reader(path: str | os.PathLike, kind: str | None = None) -> Iterator[h5py.File]:
    """Open a featflow HDF5 file for reading, failing clearly on a missing, truncated or foreign file."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: file not found")
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise StoreError(f"{path}: not a readable HDF5 file (truncated or foreign?): {err}") from err
    with handle:
        schema = handle.attrs.get("featflow_schema")
        if schema is None:
            raise StoreError(f"{path}: not a featflow file (no 'featflow_schema' attribute)")
        if int(schema) != SCHEMA_VERSION:
            raise StoreError(f"{path}: schema version {schema}, expected {SCHEMA_VERSION}; rerun the stage")
        found = handle.attrs.get("featflow_kind")
        if kind is not None and found != kind:
            raise StoreError(f"{path}: holds '{found}', expected '{kind}'")
        try:
            yield handle
        except OSError as err:
            if "read data" not in str(err):
                raise
            why = f"a chunk fails its checksum or decompression: {err}"
            raise StoreError(corrupted(path, "HDF5 file", why)) from err


def _read_tree(group: h5py.Group) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, node in group.items():
        if isinstance(node, h5py.Group):
            out[key] = _read_tree(node)
        elif h5py.check_string_dtype(node.dtype) is not None:
            out[key] = node.asstr()[()]
        else:
            out[key] = node[()]
    return out


def read_h5(path: str | os.PathLike, kind: str | None = None) -> dict[str, Any]:
    """Read a whole featflow HDF5 file into a nested dict of numpy arrays."""
    with h5_reader(path, kind) as handle:
        return _read_tree(handle)


def read_items(path: str | os.PathLike, kind: str | None, names: Sequence[str]) -> dict[str, Any]:
    """Read only the named datasets (``"labels"``, ``"layers/act"``) of a featflow HDF5 file: a stage that needs
    one layer of an activations file does not load the others. Names absent from the file are skipped."""
    with h5_reader(path, kind) as handle:
        return {name: handle[name][()] for name in names if name in handle}


def shapes(path: str | os.PathLike, kind: str | None = None) -> dict[str, tuple[int, ...]]:
    """The shape of every dataset of a featflow HDF5 file by name (``"layers/act"``), without reading data."""
    found: dict[str, tuple[int, ...]] = {}

    def visit(name: str, node: h5py.HLObject) -> None:
        if isinstance(node, h5py.Dataset):
            found[name] = node.shape

    with h5_reader(path, kind) as handle:
        handle.visititems(visit)
    return found


def iter_rows(
    sources: Sequence[tuple[str | os.PathLike, str | None, str]],
    mask: np.ndarray | None = None,
    rows: int | None = None,
) -> Iterator[tuple[slice, list[np.ndarray]]]:
    """Read datasets of equal length in step, one chunk of consecutive rows at a time, so that memory does not
    grow with the number of rows.

    Parameters
    ----------
    sources : (path, kind, dataset name) per dataset; several may come from one file.
    mask : boolean (n,) rows to keep; each chunk then holds only its kept rows (None: all).
    rows : rows per chunk; None: about :data:`CHUNK_BYTES` of stored data per chunk over all the datasets.

    Yields
    ------
    The chunk's rows (a slice of ``range(n)``) and one array per source.
    """
    with ExitStack() as stack:
        dsets = [stack.enter_context(h5_reader(path, kind))[name] for path, kind, name in sources]
        n = dsets[0].shape[0]
        if any(d.shape[0] != n for d in dsets):
            raise StoreError(f"iter_rows: datasets of different lengths {[d.shape[0] for d in dsets]} ({sources})")
        if rows is None:
            row_bytes = sum(int(np.prod(d.shape[1:])) * d.dtype.itemsize for d in dsets)
            rows = max(1, CHUNK_BYTES // max(1, row_bytes))
        for start in range(0, n, rows):
            span = slice(start, min(start + rows, n))
            keep = slice(None) if mask is None else mask[span]
            yield span, [d[span][keep] for d in dsets]


def top_rows(
    path: str | os.PathLike,
    kind: str | None,
    name: str,
    n: int,
    columns: np.ndarray | None = None,
    rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, values), each (c, n): per column of the 2-D dataset ``name`` (or per column in ``columns``), the
    ``n`` rows with its largest values, largest first (ties: the earlier row). One pass in chunks
    (:func:`iter_rows`, ``rows`` per chunk) keeping each column's best rows so far: memory independent of N."""
    width = shapes(path, kind)[name][1] if columns is None else len(columns)
    best, ids = np.zeros((width, 0)), np.zeros((width, 0), dtype=np.int64)
    for span, (chunk,) in iter_rows([(path, kind, name)], rows=rows):
        values = np.concatenate([best, (chunk if columns is None else chunk[:, columns]).T], axis=1)
        ids = np.concatenate([ids, np.broadcast_to(np.arange(span.start, span.stop), (width, len(chunk)))], axis=1)
        order = np.argsort(-values, axis=1, kind="stable")[:, :n]  # stable: earlier rows first on ties
        best, ids = np.take_along_axis(values, order, 1), np.take_along_axis(ids, order, 1)
    return ids, best


def read_rows(path: str | os.PathLike, kind: str | None, names: Sequence[str], rows: np.ndarray) -> list[np.ndarray]:
    """The datasets ``names`` of a file at ``rows`` (any shape, repeats allowed), read in chunks of the kept rows."""
    n = shapes(path, kind)[names[0]][0]
    mask = np.zeros(n, dtype=bool)
    mask[rows.reshape(-1)] = True
    parts = [arrays for _, arrays in iter_rows([(path, kind, name) for name in names], mask)]
    kept = np.flatnonzero(mask)
    return [np.concatenate([part[i] for part in parts])[np.searchsorted(kept, rows)] for i in range(len(names))]


def read_attrs(path: str | os.PathLike, kind: str | None = None) -> dict[str, Any]:
    """Root attributes of a featflow HDF5 file, JSON-valued ones decoded."""
    with h5_reader(path, kind) as handle:
        return {key: decode_attr(value) for key, value in handle.attrs.items()}


def decode_attr(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def checksum_path(path: str | os.PathLike) -> Path:
    """The ``<name>.sha256`` file beside a table, in ``sha256sum`` format (``cd`` there and ``sha256sum -c``)."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_table(frame: Any, csv_path: str | os.PathLike, parquet_path: str | os.PathLike | None = None) -> None:
    """Write a pandas DataFrame as CSV (and Parquet), atomically, each with its sha256 beside it
    (:func:`checksum_path`) for :func:`read_table` to verify: CSV keeps no checksum of its own."""
    targets = [(csv_path, lambda tmp: frame.to_csv(tmp, index=False))]
    if parquet_path is not None:
        targets.append((parquet_path, lambda tmp: frame.to_parquet(tmp, index=False)))
    for path, write in targets:
        with atomic_path(path) as tmp:
            write(tmp)
            with atomic_path(checksum_path(path)) as sums:
                sums.write_text(f"{_sha256(tmp)}  {Path(path).name}\n")


def read_table(path: str | os.PathLike, **options: Any) -> Any:
    """A table written by :func:`write_table` (CSV, or Parquet by its suffix) as a pandas DataFrame, its sha256
    verified first when its checksum file is there; a CSV with no columns (an empty frame's) reads as an empty
    frame. A mismatch is refused as a corrupted table naming the file and the fix. ``options`` go to pandas'
    reader (``keep_default_na=False``, ``columns=[...]``)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path}: file not found")
    sums = checksum_path(path)
    if sums.is_file():
        expected = (sums.read_text().split() or [""])[0]
        found = _sha256(path)
        if found != expected:
            why = f"sha256 {found[:12]}... differs from {expected[:12]}... in {sums.name}"
            raise StoreError(corrupted(path, "table", why))
    if path.suffix == ".parquet":
        return pd.read_parquet(path, **options)
    try:
        return pd.read_csv(path, **options)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


FIGURE_NUMBERS_KEY = "featflow_numbers"


def save_figure(
    fig: Any, path: str | os.PathLike, numbers: Mapping[str, str | float] | None = None, dpi: int = 120
) -> None:
    """Save a matplotlib Figure atomically (format from the suffix) and close it.

    ``numbers`` are this run's headline numbers of the figure (name -> value or ``"value (paper: ...)"``), stored
    in the PNG's text metadata so that the report's labels and landing page read them from the figure itself.
    """
    import matplotlib.pyplot as plt

    final = Path(path)
    fmt = final.suffix.lstrip(".")
    metadata = {FIGURE_NUMBERS_KEY: json.dumps(dict(numbers or {}), default=str)} if fmt == "png" else None
    with atomic_path(final) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=fmt, metadata=metadata)
    plt.close(fig)


def figure_numbers(path: str | os.PathLike) -> dict[str, Any]:
    """The headline numbers stored in a PNG by :func:`save_figure` (empty for a figure saved without them)."""
    from PIL import Image

    try:
        with Image.open(path) as image:  # PNG chunks carry a CRC-32 that PIL checks as it reads them
            text = image.text.get(FIGURE_NUMBERS_KEY) if hasattr(image, "text") else None
        return json.loads(text) if text else {}
    except FileNotFoundError:
        raise
    except (OSError, SyntaxError, ValueError) as err:  # PIL: UnidentifiedImageError, "broken data stream", ...
        raise StoreError(corrupted(path, "figure", f"{type(err).__name__}: {err}")) from err
