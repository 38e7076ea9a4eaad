"""Checking that the image files of a folder data set decode, before any job reads them.

A broken file in an ImageFolder was once found only inside a DataLoader worker's traceback in the train job, after
the data job had indexed it. The data job decodes every indexed file once (a real decode: PIL's ``verify`` checks
PNG checksums but reads no JPEG data; JPEGs decode at 1/8 scale, which still reads every byte of their entropy
coded data but skips most of the work), in a thread pool (PIL releases the GIL while it decodes, and reading from
a network file system waits), with a progress bar in the job's log, and names every file that fails.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

log = logging.getLogger(__name__)

SHOWN = 10  # broken files named in the error; the rest counted
CHUNK = 64  # files per thread-pool task: one file each costs more in hand-offs than a small image's decode


class BrokenImageError(ValueError):
    """Files of a folder data set that do not decode."""


def check_image(path: str | Path) -> str | None:
    """None when ``path`` decodes as an image, else why not (PIL's error, one line)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.format == "JPEG":
                image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
            image.load()
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, struct.error, ... on damaged files
        return " ".join(f"{type(err).__name__}: {err}".split())
    return None


def _check_many(paths: Sequence[Path]) -> list[str | None]:
    return [check_image(path) for path in paths]


def check_images(root: str | Path, files: Sequence[str], threads: int = 4, what: str = "images") -> None:
    """Decode every file of ``files`` (paths relative to ``root``) with ``threads`` threads, :data:`CHUNK` files
    per task; raise :class:`BrokenImageError` naming the files that fail (the first :data:`SHOWN`) and the fix."""
    root = Path(root)
    paths = [root / name for name in files]
    chunks = [paths[start : start + CHUNK] for start in range(0, len(paths), CHUNK)]
    broken: list[tuple[Path, str]] = []
    with (
        ThreadPoolExecutor(max_workers=max(1, threads)) as pool,
        tqdm(total=len(paths), desc=f"check {what}", unit="file", mininterval=5) as progress,
    ):
        for chunk, reasons in zip(chunks, pool.map(_check_many, chunks), strict=True):
            broken.extend((path, why) for path, why in zip(chunk, reasons, strict=True) if why is not None)
            progress.update(len(chunk))
    if broken:
        listed = "; ".join(f"{path}: {why}" for path, why in broken[:SHOWN])
        more = f" (and {len(broken) - SHOWN} more)" if len(broken) > SHOWN else ""
        raise BrokenImageError(
            f"{len(broken)} of {len(paths)} {what} under {root} do not decode{more}: {listed}; "
            "replace or remove these files, then rerun the data job"
        )
    log.info("%d %s under %s decode", len(paths), what, root)
