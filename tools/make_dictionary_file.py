"""Write a random sparse autoencoder as a dictionary file for ``complexity.dictionary.method: file``.

A stand-in for an SAE trained elsewhere (the suite runs the complexity branch on one): decoder ``W_dec`` (k, d)
with unit-norm Gaussian rows, a tied encoder ``W_enc = W_dec^T`` (d, k) as SAELens initializes it, small
Gaussian biases ``b_enc`` (k,) and ``b_dec`` (d,), and with ``--active`` a TopK SAE's ``k``; SAELens's names, in
the format of the output's suffix (.safetensors, .npz, .pt). Seeded, no network.

    python tools/make_dictionary_file.py results/sae.safetensors --k 32 --d 64 --seed 0
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def random_sae(k: int, d: int, seed: int, active: int | None = None) -> dict[str, np.ndarray]:
    """The arrays of a random SAE with ``k`` atoms of width ``d`` (float32; ``k`` a scalar with ``active``)."""
    if k < 1 or d < 1:
        raise ValueError(f"make_dictionary_file: k {k} and d {d}, expected >= 1")
    if active is not None and not 1 <= active <= k:
        raise ValueError(f"make_dictionary_file: --active {active}, expected in [1, k={k}]")
    rng = np.random.default_rng(seed)
    decoder = rng.standard_normal((k, d))
    decoder /= np.linalg.norm(decoder, axis=1, keepdims=True)
    arrays = {
        "W_dec": decoder,
        "W_enc": decoder.T.copy(),
        "b_enc": 0.01 * rng.standard_normal(k),
        "b_dec": 0.01 * rng.standard_normal(d),
    }
    arrays = {name: value.astype(np.float32) for name, value in arrays.items()}
    if active is not None:
        arrays["k"] = np.asarray(active, dtype=np.int64)
    return arrays


def write(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Save ``arrays`` in the format of ``path``'s suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.numpy import save_file

        save_file(arrays, str(path))
    elif suffix == ".npz":
        np.savez(path, **arrays)
    elif suffix in (".pt", ".pth"):
        import torch

        torch.save({name: torch.from_numpy(value) for name, value in arrays.items()}, path)
    else:
        raise ValueError(f"make_dictionary_file: unknown format '{suffix}'; expected .safetensors, .npz or .pt")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="the file to write (.safetensors, .npz or .pt)")
    parser.add_argument("--k", type=int, required=True, help="atoms")
    parser.add_argument("--d", type=int, required=True, help="width: the layer's channels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--active", type=int, default=None, help="a TopK SAE's k (default: a ReLU SAE)")
    args = parser.parse_args(argv)
    write(args.output, random_sae(args.k, args.d, args.seed, args.active))


if __name__ == "__main__":
    main()
