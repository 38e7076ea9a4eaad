"""Stages of the FV rules, one per rule (``stage(spec, inputs, outputs, ctx)``, featflow.smk.Stage); the work is
in featflow.fv.run and featflow.fv.atoms. Imports stay inside each stage (featflow.repro.import_closure)."""

from __future__ import annotations

from typing import Any

from featflow.smk import Files, Job


def fv_targets(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """Hoyer-sparse and canonical target directions x."""
    from featflow.fv.run import run_targets
    from featflow.fv.spec import FVSpec

    run_targets(FVSpec.from_dict(spec), inputs.checkpoint, outputs[0], seed=ctx.seed, attrs=ctx.attrs)


def fv_optimize(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """A realization of every target: maximize S_x(y) through the parametrization."""
    from featflow.fv.run import run_optimize
    from featflow.fv.spec import FVSpec

    run_optimize(
        FVSpec.from_dict(spec),
        inputs.checkpoint,
        inputs.targets,
        outputs[0],
        device=ctx.device,
        seed=ctx.seed,
        attrs=ctx.attrs,
        data_path=inputs.get("data"),
    )


def fv_figure(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """A grid of FV realizations."""
    from featflow.plots.fv import plot_realizations

    plot_realizations(inputs[0], outputs[0])


def feature_pictures(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """Pictures of the simplest and most complex features, beside their top-activating images; the dictionary, of
    any method, is rebuilt from its file with the whole ``complexity.dictionary`` section."""
    from featflow.dictionary.spec import DictionarySpec
    from featflow.fv.atoms import PicturesSpec, run_pictures

    i, o = inputs, outputs
    run_pictures(
        PicturesSpec.from_dict(spec["complexity"]["pictures"]),
        DictionarySpec.from_dict(spec["complexity"]["dictionary"]),
        pool_mode=spec["experiment"]["activations"]["pool"],
        split=spec["complexity"]["split"],
        checkpoint=i.checkpoint,
        dict_path=i.dictionary,
        vinfo_path=i.vinfo,
        codes_path=i.codes,
        acts_path=i.activations,
        data_path=i.data,
        out=o.h5,
        table=o.table,
        figure=o.pictures,
        device=ctx.device,
        seed=ctx.seed,
        attrs=ctx.attrs,
    )
