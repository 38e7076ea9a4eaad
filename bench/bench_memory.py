"""Benchmark: peak memory of every streaming stage at N and 16N samples (issues 15.4 and 28.5: flat in N).

Synthetic inputs in the stages' layout (tests/complexity_data.py: 5 layers of d = 64, k = 128 atoms, train codes
in the dictionary file, 8 x 8 images, an untrained smallcnn) are written once per N to a temporary folder; each
stage then runs in a fresh process, which reports its peak RSS (``getrusage``), wall and CPU seconds, and the
size of its output file. The stages: the complexity stages (the dictionary fit in its online mode, batches
streamed from the file), the activations extraction (the smallcnn's blocks and ``act`` over the N training
images), temporal decoding (one checkpoint's I_V from the extracted layers, the codes of the codes stage) and
IdCor (``frequency.idcor``: its ``max_samples`` rows, flat by design). Feature flow is not covered: it needs a
residual network (the smallcnn has no residual block).

glibc's dynamic mmap threshold makes the peak of identical runs vary by +-35 MiB (the large buffers freed early
raise the threshold, later ones then stay in the heap): the children run with ``MALLOC_MMAP_THRESHOLD_`` fixed at
128 KiB, so that N and 16N compare the stages' memory, not the allocator's history (within 0.2 MiB run to run).
Run:
    nice -n 5 .venv/bin/python bench/bench_memory.py [--n 20000] [--threads 1] [--stages codes temporal]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.complexity_data: the synthetic inputs

STAGES = (
    "dictionary",
    "codes",
    "vinfo",
    "redundancy",
    "importance",
    "robustness",
    "activations",
    "temporal",
    "idcor",
)
EXTRACTED = ("block1", "block2", "block3", "act")  # the smallcnn's layers that the extraction stage stores
SPEC = {"dictionary": {"k": 128, "batch_size": 4096, "epochs": 1, "code_tol": 1e-3}}


def _stage(name: str, root: Path) -> Path:
    """Run one stage on the inputs under ``root``; returns its output file."""
    import torch

    from featflow.activations import extract_to_h5
    from featflow.complexity.codes import encode_split
    from featflow.complexity.dictionary import fit_dictionary
    from featflow.complexity.importance import compute_importance
    from featflow.complexity.redundancy import compute_redundancy
    from featflow.complexity.robustness import compute_robustness
    from featflow.complexity.spec import ComplexitySpec
    from featflow.complexity.vinfo import compute_vinfo
    from featflow.config import ActivationsSpec
    from featflow.frequency.idcor import layer_idcor
    from featflow.temporal.run import decode_epoch

    spec, cpu = ComplexitySpec.from_dict(SPEC), torch.device("cpu")
    acts, dic, data, ckpt = (root / f for f in ("activations.h5", "dictionary.h5", "data.h5", "model.pt"))
    codes, out, extracted = root / "codes.h5", root / f"out_{name}.h5", root / "extracted.h5"
    if name == "dictionary":
        fit_dictionary(spec, layer="act", activations=acts, checkpoint=ckpt, out=out, device=cpu, seed=0, attrs={})
    elif name == "codes":
        encode_split(spec, dictionary=dic, activations=acts, checkpoint=ckpt, out=codes, device=cpu, attrs={})
        out = codes
    elif name == "vinfo":
        compute_vinfo(
            spec,
            codes=codes,
            activations=acts,
            data=data,
            dictionary=dic,
            out=out,
            factors_csv=root / "factors.csv",
            seed=0,
            attrs={},
        )
    elif name == "redundancy":
        compute_redundancy(spec, codes=codes, activations=acts, layer="act", out=out, seed=0, attrs={})
    elif name == "importance":
        compute_importance(spec, checkpoint=ckpt, codes=codes, activations=acts, dictionary=dic, out=out, attrs={})
    elif name == "robustness":
        compute_robustness(
            spec, checkpoint=ckpt, data=data, dictionary=dic, pool_mode="gap", out=out, device=cpu, seed=0, attrs={}
        )
    elif name == "activations":
        extract_to_h5(ckpt, data, "train", EXTRACTED, ActivationsSpec(workers=0), extracted, device=cpu, attrs={})
        out = extracted
    elif name == "temporal":
        decode_epoch(acts_path=extracted, codes_path=codes, spec=spec, epoch=1, out=out, seed=0, attrs={})
    else:
        layer_idcor(acts, [["layer1", "act"]], n_perm=20, max_samples=500, fraction=0.9, seed=0).to_csv(out)
    return out


def _child(name: str, root: Path, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    wall, cpu = time.perf_counter(), time.process_time()
    out = _stage(name, root)
    row = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}
    row["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row["out_mib"] = out.stat().st_size / 2**20
    print(json.dumps(row))


def _measure(name: str, root: Path, threads: int) -> dict[str, float]:
    env = {**os.environ, **{v: str(threads) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}
    env["MALLOC_MMAP_THRESHOLD_"] = str(128 << 10)  # a fixed threshold: see the module's docstring
    command = [sys.executable, __file__, "--child", name, "--root", str(root), "--threads", str(threads)]
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="N: the smaller run; the larger is 16N")
    parser.add_argument("--threads", type=int, default=1, help="torch and BLAS threads of every stage")
    parser.add_argument(
        "--stages",
        nargs="+",
        choices=STAGES,
        default=STAGES,
        help="in this order (temporal needs activations and codes before it)",
    )
    parser.add_argument("--child", choices=STAGES)
    parser.add_argument("--root", type=Path)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.root, args.threads)
        return
    from tests.complexity_data import write_complexity_inputs

    rows: dict[tuple[str, int], dict[str, float]] = {}
    for n in (args.n, 16 * args.n):
        with tempfile.TemporaryDirectory() as tmp:
            write_complexity_inputs(Path(tmp), n)
            inputs = sum(f.stat().st_size for f in Path(tmp).iterdir()) / 2**20
            for name in args.stages:
                rows[name, n] = _measure(name, Path(tmp), args.threads)
                print(f"# {name} at N={n}: {rows[name, n]}", file=sys.stderr)
        print(f"inputs at N={n}: {inputs:.0f} MiB on disk", file=sys.stderr)
    print(f"N = {args.n:,} and 16N = {16 * args.n:,} samples; 5 layers of d = 64, k = 128; {args.threads} thread(s)")
    print("| stage | RSS N (MiB) | RSS 16N (MiB) | 16N / N | output 16N (MiB) | wall s N / 16N | CPU s N / 16N |")
    print("|---|---|---|---|---|---|---|")
    for name in args.stages:
        small, big = rows[name, args.n], rows[name, 16 * args.n]
        print(
            f"| {name} | {small['rss_mib']:.0f} | {big['rss_mib']:.0f} | {big['rss_mib'] / small['rss_mib']:.3f} "
            f"| {big['out_mib']:.1f} | {small['wall']:.1f} / {big['wall']:.1f} "
            f"| {small['cpu']:.1f} / {big['cpu']:.1f} |"
        )


if __name__ == "__main__":
    main()
