"""Benchmark of streaming extraction: peak memory at N and 4N images, and images/s against a plain loop.

An ImageFolder tree of generated PNGs (4N training images) and a random ResNet-18 checkpoint are written to a
temporary folder; each measurement runs in a fresh process (peak RSS is per process):
  - featflow: ``extract_to_h5`` (DataLoader with ``--workers`` processes, activations appended batch by batch);
  - plain loop: the pre-streaming way, one process decoding every image with PIL and the same transform,
    stacking the whole split in memory, then extracting batch by batch and keeping the activations until one
    write at the end.
Both use ``--threads`` torch threads. Run:
    .venv/bin/python bench/bench_activations.py [--n 128] [--size 112] [--threads 2] [--workers 2]
and copy the printed table into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.folder_data: the suite's image trees

LAYERS = ("layer2", "layer4", "avgpool")


def _peak_mib() -> tuple[float, float]:
    """Peak RSS of this process and of its largest finished child (DataLoader workers), MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _setup(root: Path, n: int, size: int) -> tuple[Path, Path]:
    """An ImageFolder of ``n`` train images (and a small val/), its featflow index file, a ResNet-18 checkpoint."""
    from featflow.config import DatasetSpec, ModelSpec
    from featflow.data import write_dataset
    from featflow.models import build_model
    from featflow.models.checkpoint import save_checkpoint
    from tests.folder_data import write_imagefolder

    write_imagefolder(root / "images", classes=8, per_class=n // 8, size=(size + 16, size + 24))
    data = root / "data.h5"
    write_dataset(DatasetSpec(kind="imagefolder", path=str(root / "images"), n_train=n, image_size=size), data, {})
    spec = ModelSpec(arch="resnet18", dataset="images", cifar_stem=False)
    torch.manual_seed(0)
    model = build_model(spec, (3, size, size), 8)
    save_checkpoint(root / "model.pt", model, spec, (3, size, size), 8, {})
    return data, root / "model.pt"


def _child_featflow(root: Path, n: int, workers: int, batch: int) -> dict[str, float]:
    from featflow.activations import extract_to_h5
    from featflow.config import ActivationsSpec

    spec = ActivationsSpec(batch_size=batch, max_samples=n, workers=workers)
    start = time.perf_counter()
    extract_to_h5(
        root / "model.pt",
        root / "data.h5",
        "train",
        LAYERS,
        spec,
        root / f"a{n}.h5",
        device=torch.device("cpu"),
        attrs={},
    )
    return {"seconds": time.perf_counter() - start}


def _child_plain(root: Path, n: int, batch: int) -> dict[str, float]:
    from PIL import Image
    from torchvision.transforms import v2

    from featflow import store
    from featflow.activations import pool
    from featflow.models import capture, load_checkpoint

    model, payload = load_checkpoint(root / "model.pt")
    size = payload["input_shape"][-1]
    transform = v2.Compose(
        [v2.Resize(size), v2.CenterCrop(size), v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True)]
    )
    index = store.read_h5(root / "data.h5", "dataset")["train"]
    start = time.perf_counter()
    folder = root / "images" / "train"
    x = torch.stack([transform(Image.open(folder / f).convert("RGB")) for f in index["files"][:n]])
    feats: dict[str, list[np.ndarray]] = {name: [] for name in LAYERS}
    with torch.no_grad(), capture(model, LAYERS) as outputs:
        for first in range(0, n, batch):
            model(x[first : first + batch])
            for name in LAYERS:
                feats[name].append(pool(outputs[name], "gap").numpy())
    store.write_h5(root / f"p{n}.h5", "activations", {k: np.concatenate(v) for k, v in feats.items()}, {})
    return {"seconds": time.perf_counter() - start}


def _measure(root: Path, mode: str, n: int, args: argparse.Namespace) -> dict[str, float]:
    """Run one measurement in a fresh process and read its JSON line."""
    command = [sys.executable, __file__, "--child", mode, "--root", str(root), "--n", str(n)]
    command += ["--threads", str(args.threads), "--workers", str(args.workers), "--batch", str(args.batch)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=128, help="N: the smaller run; the larger is 4N")
    parser.add_argument("--size", type=int, default=112, help="image side fed to the network")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--child", choices=["featflow", "plain"])
    parser.add_argument("--root", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        result = (
            _child_featflow(args.root, args.n, args.workers, args.batch)
            if args.child == "featflow"
            else _child_plain(args.root, args.n, args.batch)
        )
        result["rss_mib"], result["workers_rss_mib"] = _peak_mib()
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _setup(root, 4 * args.n, args.size)
        rows = {
            (mode, n): _measure(root, mode, n, args) for mode in ("featflow", "plain") for n in (args.n, 4 * args.n)
        }
    print(
        f"ResNet-18 (random), {args.size} x {args.size} px from {args.size + 16} x {args.size + 24} PNGs, layers "
        f"{', '.join(LAYERS)}, batch {args.batch}, {args.threads} torch threads, {os.cpu_count()} cores"
    )
    print("| extraction | images | seconds | images/s | peak RSS (MiB) | largest worker RSS (MiB) |")
    print("|---|---|---|---|---|---|")
    for (mode, n), row in rows.items():
        name = f"featflow, {args.workers} DataLoader workers" if mode == "featflow" else "plain loop (in memory)"
        workers = f"{row['workers_rss_mib']:.0f}" if mode == "featflow" else "(none)"
        print(f"| {name} | {n} | {row['seconds']:.2f} | {n / row['seconds']:.1f} | {row['rss_mib']:.0f} | {workers} |")
    for mode in ("featflow", "plain"):
        growth = rows[(mode, 4 * args.n)]["rss_mib"] / rows[(mode, args.n)]["rss_mib"] - 1
        print(f"{mode}: peak RSS at 4N vs N: {100 * growth:+.1f}%")
    speed = (4 * args.n / rows[("featflow", 4 * args.n)]["seconds"]) / (
        4 * args.n / rows[("plain", 4 * args.n)]["seconds"]
    )
    print(f"featflow / plain loop images/s at 4N: {speed:.2f}x")


if __name__ == "__main__":
    main()
