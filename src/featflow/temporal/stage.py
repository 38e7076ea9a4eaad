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
        acts_path=inputs.activations,
        codes_path=inputs.codes,
        spec=ComplexitySpec.from_dict(spec["complexity"]),
        epoch=int(ctx.wildcards.epoch),
        out=outputs[0],
        seed=ctx.seed,
        attrs=ctx.attrs,
    )


def sediment(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """An epoch's own dictionary (one recipe at every epoch), its codes' I_V, K and importance."""
    from featflow.complexity.dictionary import dictionary_layer
    from featflow.complexity.spec import ComplexitySpec
    from featflow.temporal.run import sediment_epoch
    from featflow.temporal.spec import TemporalSpec

    cx = ComplexitySpec.from_dict(spec["complexity"])
    sediment_epoch(
        train_acts=inputs.train,
        test_acts=inputs.test,
        data_path=inputs.data,
        checkpoint=inputs.checkpoint,
        spec=cx,
        temporal=TemporalSpec.from_dict(spec["temporal"]),
        layer=dictionary_layer(cx.dictionary, list(spec["experiment"]["layers"])),
        epoch=int(ctx.wildcards.epoch),
        out=outputs[0],
        device=ctx.device,
        seed=ctx.seed,
        attrs=ctx.attrs,
    )


def temporal(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """Curves over the checkpoints, emergence on the learned part, the matched K (sedimentation)."""
    from featflow.temporal.run import summarize
    from featflow.temporal.spec import TemporalSpec

    i, o = inputs, outputs
    summarize(
        decoding_paths=list(i.decoding),
        sediment_paths=list(i.sediment),
        vinfo_path=i.vinfo,
        dict_path=i.dictionary,
        factors_path=i.factors,
        temporal=TemporalSpec.from_dict(spec["temporal"]),
        out=o.h5,
        tables={
            "emergence_csv": o.csv,
            "emergence_parquet": o.parquet,
            "factors_csv": o.factors,
            "sediment_csv": o.sediment_csv,
            "sediment_parquet": o.sediment_parquet,
        },
        attrs=ctx.attrs,
    )


def temporal_figures(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """The decoding, sedimentation and importance-over-training figures."""
    from featflow.temporal.figures import figures

    figures(inputs.temporal, inputs.factors, dict(outputs.items()))
