"""Stages of the IFV rules, one per rule (``stage(spec, inputs, outputs, ctx)``, featflow.smk.Stage); the work is
in featflow.ifv.run, featflow.ifv.cross and featflow.plots.fv. Imports stay inside each stage
(featflow.repro.import_closure)."""

from __future__ import annotations

from typing import Any

from featflow.smk import Files, Job


def jacobian(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """The Jacobian Dy of every realization (n_f backward passes, vmapped)."""
    from featflow.fv.spec import FVSpec
    from featflow.ifv.run import run_jacobian

    run_jacobian(
        FVSpec.from_dict(spec), inputs.checkpoint, inputs.realizations, outputs[0], device=ctx.device, attrs=ctx.attrs
    )


def critical_space(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """The critical space (Algorithm 1) from the first Jacobians."""
    from featflow.fv.spec import FVSpec
    from featflow.ifv.run import run_critical_space

    run_critical_space(FVSpec.from_dict(spec), inputs[0], outputs[0], attrs=ctx.attrs)


def critical_space_figure(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """The critical spaces, the one each selection rule picks, and (at the logits) the trivial solutions."""
    from featflow.ifv.figures import at_logits, run_critical_space_figure

    run_critical_space_figure(
        inputs.critical,
        inputs.ifv,
        at_logits(inputs.realizations, inputs.data),
        tuple(ctx.params.excluded),
        outputs.critical_space,
    )


def ifv(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """Inverse FV: the SVD solution per realization, scored against the targets and the critical space."""
    from featflow.fv.spec import FVSpec
    from featflow.ifv.run import run_ifv

    i = inputs
    run_ifv(
        FVSpec.from_dict(spec),
        i.realizations,
        i.jacobian,
        i.critical,
        out=outputs.h5,
        table=outputs.table,
        medians=outputs.medians,
        seed=ctx.seed,
        attrs=ctx.attrs,
    )


def ifv_figures(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """Angular-distance histograms (medians per target kind in the labels) and the alpha_j stacked bar."""
    from featflow.plots.fv import plot_ifv

    plot_ifv(inputs.h5, inputs.medians, outputs.angular, outputs.alpha)


def reoptimize(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """Re-optimization of realizations with the IFV solution and random objectives, scored by SSIM."""
    from featflow.fv.spec import FVSpec
    from featflow.ifv.run import run_reoptimize

    i = inputs
    run_reoptimize(
        FVSpec.from_dict(spec),
        i.checkpoint,
        i.realizations,
        i.ifv,
        outputs[0],
        device=ctx.device,
        seed=ctx.seed,
        attrs=ctx.attrs,
    )


def reoptimize_figure(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """SSIM of the re-optimized realizations."""
    from featflow.plots.fv import plot_reoptimize

    plot_reoptimize(inputs.ifv, inputs.reoptimize, outputs[0])


def cross_ifv(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """Realizations of one network inverted with another network's Jacobians."""
    from featflow.fv.spec import FVSpec
    from featflow.ifv.cross import run_cross

    run_cross(
        FVSpec.from_dict(spec),
        ctx.wildcards.other,
        inputs.checkpoint,
        inputs.realizations,
        outputs[0],
        device=ctx.device,
        attrs=ctx.attrs,
    )


def cross_ifv_figure(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """How well the other network's IFV recovers the targets."""
    from featflow.plots.fv import plot_cross

    plot_cross(inputs[0], spec["model"], ctx.wildcards.other, outputs[0])
