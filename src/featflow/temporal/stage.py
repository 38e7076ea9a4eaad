"""Stages of complexity over training, one per rule (``stage(spec, inputs, outputs, ctx)``, featflow.smk.Stage);
the work is in featflow.temporal.run. Imports stay inside each stage (featflow.repro.import_closure)."""

from __future__ import annotations

from typing import Any

from featflow.smk import Files, Job


def temporal_decoding(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """I_V of the final features and planted factors from one checkpoint's layers."""
    from featflow.complexity.spec import ComplexitySpec
    from featflow.temporal.run import decode_epoch

    decode_epoch(
        inputs.activations,
        inputs.codes,
        ComplexitySpec.from_dict(spec["complexity"]),
        int(ctx.wildcards.epoch),
        outputs[0],
        ctx.attrs,
        ctx.seed,
    )


def sediment(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """A checkpoint's own dictionary, its codes' I_V and K."""
    from featflow.complexity import pipeline
    from featflow.complexity.spec import ComplexitySpec
    from featflow.temporal.run import sediment_epoch
    from featflow.temporal.spec import TemporalSpec

    cx = ComplexitySpec.from_dict(spec["complexity"])
    sediment_epoch(
        inputs.train,
        inputs.test,
        inputs.data,
        cx,
        TemporalSpec.from_dict(spec["temporal"]),
        pipeline.dictionary_layer(cx, list(spec["experiment"]["layers"])),
        int(ctx.wildcards.epoch),
        outputs[0],
        ctx.device,
        ctx.attrs,
        ctx.seed,
    )


def temporal(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """Curves over the checkpoints, emergence epochs and the matched K."""
    from featflow.temporal.run import summarize
    from featflow.temporal.spec import TemporalSpec

    i, o = inputs, outputs
    summarize(
        list(i.decoding),
        list(i.sediment),
        i.vinfo,
        i.dictionary,
        i.codes,
        i.factors,
        TemporalSpec.from_dict(spec["temporal"]),
        o.h5,
        o.csv,
        o.parquet,
        o.factors,
        ctx.attrs,
    )


def temporal_figures(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """The decoding and sedimentation figures."""
    from featflow.temporal.run import figures

    figures(inputs.temporal, inputs.factors, dict(outputs.items()))
