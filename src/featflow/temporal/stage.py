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
    """An epoch's own dictionary (one recipe at every epoch), its codes' I_V, K and importance."""
    from featflow.complexity import pipeline
    from featflow.complexity.spec import ComplexitySpec
    from featflow.temporal.run import sediment_epoch
    from featflow.temporal.spec import TemporalSpec

    cx = ComplexitySpec.from_dict(spec["complexity"])
    sediment_epoch(
        inputs.train,
        inputs.test,
        inputs.data,
        inputs.checkpoint,
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
    """Curves over the checkpoints, emergence on the learned part, the matched K (sedimentation)."""
    from featflow.temporal.run import summarize
    from featflow.temporal.spec import TemporalSpec

    i, o = inputs, outputs
    summarize(
        list(i.decoding),
        list(i.sediment),
        i.vinfo,
        i.dictionary,
        i.factors,
        TemporalSpec.from_dict(spec["temporal"]),
        o.h5,
        {
            "emergence_csv": o.csv,
            "emergence_parquet": o.parquet,
            "factors_csv": o.factors,
            "sediment_csv": o.sediment_csv,
            "sediment_parquet": o.sediment_parquet,
        },
        ctx.attrs,
    )


def temporal_figures(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """The decoding, sedimentation and importance-over-training figures."""
    from featflow.temporal.figures import figures

    figures(inputs.temporal, inputs.factors, dict(outputs.items()))
