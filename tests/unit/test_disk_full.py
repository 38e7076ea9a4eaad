"""A write that runs out of room leaves no temporary file and says "disk full while writing <file>" (issue 24.2).

Each writer runs in a child process against a folder with no room: a 1 MiB tmpfs mounted in a private mount
namespace (``unshare -m``, root only: ENOSPC, the full disk a user meets; the mount vanishes with the child) and a
file size limit (``RLIMIT_FSIZE`` with SIGXFSZ ignored: EFBIG, any user). Once the whole data job left
``results/data/planted.h5.tmp`` behind: HDF5's chunk cache reported the full disk in ``__dealloc__`` and the next
flush crashed the process. Run directly, this file is the child: ``python test_disk_full.py FOLDER [LIMIT]``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

WRITERS = ("dataset", "stream", "checkpoint", "table", "figure")


def _child(folder: Path, limit: int | None) -> None:
    """Run every writer into ``folder`` (empty, with no room for any of them) and print one JSON line each:
    the error's type and message and what the folder holds afterwards."""
    import signal

    import numpy as np
    import pandas as pd
    import torch

    from featflow import store
    from featflow.config import DatasetSpec, ModelSpec
    from featflow.data import write_dataset
    from featflow.models.checkpoint import save_checkpoint
    from featflow.models.registry import build_model

    spec = ModelSpec.from_dict({"arch": "smallcnn", "dataset": "p", "width": 64})  # 1.8 MB of weights
    model = build_model(spec, (3, 32, 32), 8, torch.zeros(3), torch.ones(3))
    rng = np.random.default_rng(0)
    figure = _figure(rng)

    def stream(path: Path) -> None:
        with store.h5_writer(path, "activations", {}) as handle:
            for _ in range(40):
                store.append_rows(handle, "act", rng.random((64, 512)).astype(np.float32))

    writers = {
        "dataset": lambda p: write_dataset(DatasetSpec(kind="planted", n_train=2000, n_test=200, image_size=32), p, {}),
        "stream": stream,
        "checkpoint": lambda p: save_checkpoint(p, model, spec, (3, 32, 32), 8, {}),
        "table": lambda p: store.write_table(pd.DataFrame(rng.random((40000, 4))), p),
        "figure": lambda p: store.save_figure(figure, p),
    }
    names = {"dataset": "planted.h5", "stream": "train.h5", "checkpoint": "cnn.pt", "table": "t.csv", "figure": "f.png"}
    if limit is not None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    for name in WRITERS:
        path = folder / names[name]
        try:
            writers[name](path)
            error = None
        except Exception as err:  # reported to the parent, which checks type and message
            error = {"type": type(err).__name__, "message": str(err)}
        print(json.dumps({"writer": name, "path": str(path), "error": error, "left": sorted(os.listdir(folder))}))
        sys.stdout.flush()


def _figure(rng):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 12))
    ax.imshow(rng.random((600, 600)))  # noise: a PNG of megabytes
    return fig


def _run(command: list[str]) -> list[dict]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"child died ({done.returncode}): {done.stderr[-3000:]}"
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def _check(results: list[dict], why: str) -> None:
    assert [r["writer"] for r in results] == list(WRITERS)
    for r in results:
        assert r["error"] is not None, f"{r['writer']}: wrote {r['path']} with no room"
        assert r["error"]["type"] == "DiskFullError", r
        assert r["error"]["message"].startswith(f"disk full while writing {r['path']} ({why}"), r
        assert r["left"] == [], f"{r['writer']}: left {r['left']}"


def _can_mount() -> bool:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_mount(), reason="needs root and unshare to mount a private tmpfs")
def test_a_full_disk_leaves_nothing_and_names_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "full"
    folder.mkdir()
    script = f"mount -t tmpfs -o size=1m tmpfs '{folder}' && exec '{sys.executable}' '{__file__}' '{folder}'"
    _check(_run(["unshare", "-m", "sh", "-c", script]), "no space left on device")


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_a_file_size_limit_leaves_nothing_and_names_the_file(tmp_path: Path) -> None:
    _check(_run([sys.executable, __file__, str(tmp_path), str(256 << 10)]), "file size limit reached")


if __name__ == "__main__":
    _child(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else None)
