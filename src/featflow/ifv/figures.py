"""The critical-space figure of an FV experiment (rule critical_space_figure), apart from the IFV computation:
it reads stored bases with numpy and draws them with featflow.plots, so its job imports no torch
(``tests/unit/test_imports.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from featflow import store
from featflow.metrics.subspace import angle_to_span, complement, known_directions


def at_logits(realizations: str | Path, data: str | Path) -> bool:
    """Whether an FV experiment reads a classifier's logits (identity aggregation, one feature per class of its
    data set): only there are (1, ..., 1) and e_c of never-seen classes the paper's trivial solutions."""
    spec = store.read_attrs(realizations, "fv_realizations").get("config") or {}
    n_f = store.shapes(realizations, "fv_realizations")["responses"][1]
    return spec.get("aggregation") == "identity" and n_f == len(store.read_attrs(data).get("classes", []))


def run_critical_space_figure(
    critical: str | Path, ifv: str | Path, logits: bool, excluded: tuple[int, ...], out: str | Path
) -> None:
    """The distinct critical spaces of one experiment, the median projected angle of IFV in each with the space
    each selection rule picks, and at the logits (``logits``) how close their complements come to the paper's
    trivial solutions. Headline numbers: the count and dims of the spaces, both picks, and at the logits the
    angles for the (n_f - 1)- and (n_f - 1 - |excluded|)-dim spaces."""
    from featflow.plots.fv import critical_space_plot

    data = store.read_h5(critical, "fv_critical_space")
    result, attrs = store.read_h5(ifv, "ifv"), store.read_attrs(ifv, "ifv")
    dims = data["dim"]
    bases = [np.asarray(data["bases"][f"space_{i}"], float) for i in range(len(dims))]
    n_f = int(bases[0].shape[0])
    numbers: dict[str, str] = {
        "distinct critical spaces": f"{len(dims)} (dims {', '.join(str(int(d)) for d in dims)}; paper: 1 for DNcl, "
        "2 for DN4cl)",
        "space picked by the paper's rule (best projected angle)": f"dim {attrs['critical_dim_paper']}",
        "space picked by featflow's rule (angle over chance)": f"dim {attrs['critical_dim_chance']}",
        "space IFV uses": f"dim {attrs['critical_dim']} (fv.critical_space.select = {attrs['selection_rule']})",
    }
    angles: dict[str, np.ndarray] = {}
    if logits:
        angles = {
            name: np.array([angle_to_span(v, complement(b)) if b.shape[1] < n_f else 90.0 for b in bases])
            for name, v in known_directions(n_f, excluded).items()
        }
        for dim, names in ((n_f - 1, ["ones"]), (n_f - 1 - len(excluded), list(angles))):
            hit = np.flatnonzero(dims == dim)
            for name in names:
                value = f"{angles[name][hit[0]]:.2f}" if len(hit) else "no such space"
                numbers[f"angle of {name} to the complement of the {dim}-dim C (deg)"] = f"{value} (paper: ~0)"
    figure = critical_space_plot(
        data["rho"],
        dims,
        angles,
        n_f,
        space_dims=result["space_dim"],
        space_angles=result["space_median_angle"],
        picks={"paper": int(attrs["critical_dim_paper"]), "chance": int(attrs["critical_dim_chance"])},
    )
    store.save_figure(figure, out, numbers)
