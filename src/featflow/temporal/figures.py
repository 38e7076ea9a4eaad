"""The figures of complexity over training (rule temporal_figures), apart from the computation in
:mod:`featflow.temporal.run`: they read ``temporal.h5`` and the factors' table only, so their job imports no
torch (``tests/unit/test_imports.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from featflow import store

ALPHA = 0.05  # the binomial test's level: above it, no sedimentation

Path_ = str | Path


def _sediment_verdict(fraction: float, n: int, p: float) -> str:
    """A fraction of features whose K decreases, its binomial p against 1/2, and what that says."""
    if not n:
        return "no matched features with unequal K"
    word = "no sedimentation" if p > ALPHA else "K decreases (sedimentation)" if fraction > 0.5 else "K increases"
    return f"{fraction:.3f} of {n} (binomial p {p:.3g}: {word})"


def figures(temporal_path: Path_, factors_csv: Path_, outs: Mapping[str, Path_]) -> None:
    """Temporal decoding (Fig. 5A: I_V over epochs, emergence on the learned part against K), sedimentation (Fig.
    5B: K of the matched features over training, each fraction with its binomial p) and importance over training
    (Fig. 6: importance against K at the first trained checkpoint and at the end, K over training of the most
    important features), each with its numbers beside the paper's claim."""
    from featflow.plots import temporal as plots

    data, meta = store.read_h5(temporal_path, "temporal"), store.read_attrs(temporal_path, "temporal")
    epochs, k_final = data["epochs"], data["complexity"]
    factors = store.read_table(factors_csv)
    fig, rho = plots.decoding(epochs, data["curves"], k_final, data["emergence"], factors, str(meta["layer"]))
    numbers = {
        "rho(K, emergence epoch)": (
            f"{rho} over the features that gain (paper: positive, simple features become decodable first)"
        ),
        "rho(K, I_V at epoch 0)": f"{meta['rho_k_iv0_text']} (the untrained network, a control the paper does not "
        "report: negative = simple features are readable before any training)",
        "share readable at epoch 0": f"{meta['readable_at_init']:.3f} (I_V_0 >= {meta['fraction']:g} x final I_V)",
        "emergence": (
            f"first checkpoint with I_V_e - I_V_0 >= {meta['fraction']:g} (I_V_final - I_V_0) from {meta['layer']}, "
            f"over the features with I_V_final - I_V_0 > {meta['min_gain']:g}"
            + (f"; not measured: {meta['emergence_note']}" if meta["emergence_note"] else "")
        ),
        "checkpoints (epochs; 0 the initialization, the last the final model)": ", ".join(str(int(e)) for e in epochs),
        "test accuracy per checkpoint": ", ".join(f"{a:.3f}" for a in np.atleast_1d(meta["accuracy"])),
    }
    if len(factors):
        numbers["planted factors' emergence epoch"] = ", ".join(
            f"{row.factor} {row.emergence_epoch:g}" + (" (readable at epoch 0)" if row.readable_at_init == 1 else "")
            for row in factors.itertuples()
        )
        numbers["planted order color <= orientation <= parity (color first)"] = str(meta.get("planted_order"))
    store.save_figure(fig, outs["decoding"], numbers)
    sed_epochs = data["sediment_epochs"]
    fig = plots.sedimentation(sed_epochs, data["matched_complexity"])
    checkpoints = [int(e) for e in sed_epochs[:-1]]
    fractions = zip(checkpoints, data["k_decreasing"], data["k_decreasing_n"], data["k_decreasing_p"], strict=True)
    store.save_figure(
        fig,
        outs["sedimentation"],
        {
            "features whose K decreases over training": (
                f"{_sediment_verdict(meta['k_decreasing'], int(meta['k_decreasing_n']), meta['k_decreasing_p'])} "
                f"from epoch {checkpoints[0] if checkpoints else 'n/a'} to the end, one dictionary recipe at every "
                "epoch (paper: K decreases over training, features sediment)"
            ),
            "fraction whose K decreases from each checkpoint to the end": "; ".join(
                f"{e}: {_sediment_verdict(f, int(n), p)}" for e, f, n, p in fractions
            ),
            f"median matched cosine ({meta['match']}) per checkpoint": ", ".join(
                f"{e}: {c:.3f}" for e, c in zip(checkpoints, data["match_cosine"], strict=False)
            ),
        },
    )
    fig, rhos, top = plots.importance(
        sed_epochs, data["own_complexity"], data["own_importance"], data["matched_complexity"]
    )
    medians = plots.split_medians(data["own_importance"][-1], data["matched_complexity"], top)
    store.save_figure(
        fig,
        outs["importance"],
        {
            f"rho(K, |importance|) at epoch {int(sed_epochs[0])} and at the end": (
                f"{rhos[0]}; {rhos[1]} (paper, Fig. 6: the most important features become simpler over training)"
            ),
            f"median K per epoch of the {top} most important final features | the others": ", ".join(
                f"{int(e)}: {a:.3f} | {b:.3f}" for e, a, b in zip(sed_epochs, *medians, strict=True)
            ),
        },
    )
