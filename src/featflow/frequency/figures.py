"""The frequency branch's figure numbers and the maps figure (rules adversarial_maps_figure, idcor_figure), apart
from the torch code that computes them: they read stored tables and maps, so their jobs import no torch
(``tests/unit/test_imports.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from featflow import store

MAPS_KIND = "frequency_maps"  # the kind of a model's maps file (featflow.frequency.freq_maps writes it)


def maps_numbers(row: dict[str, Any]) -> dict[str, str]:
    """Headline numbers of the maps figure, the paper's values beside (Basile et al., ResNet-20 on CIFAR-10)."""
    return {
        "attack": f"{row['attack']} (paper: FMN L-inf)",
        "pairs": f"{int(row['n_pairs'])} of {int(row['n_images'])}",
        "converged": f"{row['converged_essential']:.2f} essential, {row['converged_adversarial']:.2f} adversarial"
        + ("" if row["all_converged"] else " (NOT all converged)"),
        "support": f"median {row['support_median_essential']:.1f} essential, "
        f"{row['support_median_adversarial']:.1f} adversarial kept weights per map, DC-only "
        f"{row['dc_only_essential']:.0%} / {row['dc_only_adversarial']:.0%}"
        + ("" if bool(row["support_ok"]) else f" (BELOW {int(row['support_min'])}: comparison not applicable)"),
        "IdCor": f"{row['idcor']:.3f} (paper: high)",
        "IdCor p": f"rank {row['p_value']:.3g} (pooled rows, featflow), within-class {row['p_value_stratified']:.3g}, "
        f"authors' z-score {row['p_value_authors']:.3g} (raw maps) (paper: smallest possible)",
        "cosine": f"{row['cosine']:.3f} (paper: clearly below IdCor)",
        "SVCCA": f"{row['svcca']:.3f} (paper: clearly below IdCor)",
        "linear CKA": f"{row['linear_cka']:.3f}",
        "mean map weight": f"{row['density_essential']:.2e} essential, {row['density_adversarial']:.2e} adversarial",
    }


def write_maps_figure(maps_path: str | Path, table_path: str | Path, png: str | Path) -> None:
    """The mean essential and adversarial maps of one model, titled with their correlation and convergence."""
    from featflow.plots.frequency import maps_figure

    row = store.read_table(table_path).iloc[0].to_dict()
    store.save_figure(maps_figure(store.read_h5(maps_path, MAPS_KIND), row), png, maps_numbers(row))


def idcor_numbers(table: pd.DataFrame) -> dict[str, str]:
    """Headline numbers of the layer IdCor figure: per pair, IdCor with its plain and within-class p-values
    (Basile et al. report high IdCor with the smallest possible p between successive layers)."""
    numbers = {}
    for _, row in table.iterrows():
        smallest = 1 / (int(row["n_perm"]) + 1)
        numbers[f"{row['layer_a']} / {row['layer_b']}"] = (
            f"IdCor {row['idcor']:.3f}, p {row['p_value']:.3g}, within-class p {row['p_value_stratified']:.3g}"
            + (" (plain null invalid: clustered)" if bool(row["null_below"]) else "")
            + f" (paper: high, smallest possible p = {smallest:.3g})"
        )
    return numbers
