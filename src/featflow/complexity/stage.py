"""The complexity branch's stages, one per rule, each ``stage(spec, inputs, outputs, ctx)`` (featflow.smk.Stage).

``spec`` is the rule's cache key (``{"complexity": ..., "experiment": ...}``, workflow/rules/common.smk), the
files are the rule's, by name. Each stage imports what it runs inside its body, so that a rule's code key covers
only the modules its own stage reaches (featflow.repro.import_closure follows an imported function).
"""

from __future__ import annotations

from typing import Any

from featflow.smk import Files, Job


def dictionary(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """The overcomplete NMF dictionary of the experiment's dictionary layer (train split)."""
    from featflow.complexity import pipeline
    from featflow.complexity.spec import ComplexitySpec

    cx = ComplexitySpec.from_dict(spec["complexity"])
    layer = pipeline.dictionary_layer(cx, list(spec["experiment"]["layers"]))
    pipeline.fit_dictionary(
        inputs.activations, inputs.checkpoint, cx, layer, outputs[0], ctx.device, ctx.attrs, ctx.seed
    )


def codes(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """The codes of one split with the dictionary fixed (batched NNLS), or the merge of its shards."""
    from featflow.complexity import pipeline
    from featflow.complexity.spec import ComplexitySpec

    cx = ComplexitySpec.from_dict(spec["complexity"])
    if cx.shards > 1:
        pipeline.merge_codes(list(inputs.shards), outputs[0], ctx.attrs)
    else:
        pipeline.encode_split(
            inputs.dictionary, inputs.activations, inputs.checkpoint, cx, outputs[0], ctx.device, ctx.attrs
        )


def codes_shard(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """The codes of one contiguous slice of a split (``complexity.shards`` > 1)."""
    from featflow.complexity import pipeline
    from featflow.complexity.spec import ComplexitySpec

    cx = ComplexitySpec.from_dict(spec["complexity"])
    pipeline.encode_split(
        inputs.dictionary,
        inputs.activations,
        inputs.checkpoint,
        cx,
        outputs[0],
        ctx.device,
        ctx.attrs,
        int(ctx.wildcards.shard),
        cx.shards,
    )


def complexity(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """I_V of every feature and planted factor from every layer, and K."""
    from featflow.complexity import pipeline
    from featflow.complexity.spec import ComplexitySpec

    pipeline.compute_vinfo(
        inputs.codes,
        inputs.activations,
        inputs.data,
        inputs.dictionary,
        ComplexitySpec.from_dict(spec["complexity"]),
        outputs.vinfo,
        outputs.factors,
        ctx.attrs,
        ctx.seed,
    )


def redundancy(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """Redundancy of every feature under random neuron masks of the dictionary layer."""
    from featflow import store
    from featflow.complexity import pipeline
    from featflow.complexity.spec import ComplexitySpec

    layer = store.read_attrs(inputs.dictionary, "complexity-dictionary")["layer"]
    cx = ComplexitySpec.from_dict(spec["complexity"])
    pipeline.compute_redundancy(inputs.codes, inputs.activations, layer, cx, outputs[0], ctx.attrs, ctx.seed)


def robustness(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """Sensitivity of every feature to Gaussian input noise and the accuracy under it, or the merge of its shards."""
    from featflow.complexity import pipeline
    from featflow.complexity.spec import ComplexitySpec

    cx = ComplexitySpec.from_dict(spec["complexity"])
    if cx.shards > 1:
        pipeline.merge_robustness(list(inputs.shards), cx, outputs[0], ctx.attrs)
    else:
        pipeline.compute_robustness(
            inputs.checkpoint,
            inputs.data,
            inputs.dictionary,
            cx,
            spec["experiment"]["activations"]["pool"],
            outputs[0],
            ctx.device,
            ctx.attrs,
            ctx.seed,
        )


def robustness_shard(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """The summed robustness statistics of one contiguous slice of the images (``complexity.shards`` > 1)."""
    from featflow.complexity import pipeline
    from featflow.complexity.spec import ComplexitySpec

    cx = ComplexitySpec.from_dict(spec["complexity"])
    pipeline.compute_robustness(
        inputs.checkpoint,
        inputs.data,
        inputs.dictionary,
        cx,
        spec["experiment"]["activations"]["pool"],
        outputs[0],
        ctx.device,
        ctx.attrs,
        ctx.seed,
        int(ctx.wildcards.shard),
        cx.shards,
    )


def importance(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """Importance of every feature for the classifier (closed form)."""
    from featflow.complexity import pipeline

    pipeline.compute_importance(
        inputs.checkpoint, inputs.codes, inputs.activations, inputs.dictionary, outputs[0], ctx.attrs
    )


def feature_table(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """The feature table, a row per feature, and its HTML view for the report."""
    from featflow.complexity.report import feature_table as write_table

    i = inputs
    write_table(
        i.dictionary,
        i.codes,
        i.vinfo,
        i.redundancy,
        i.robustness,
        i.importance,
        outputs.csv,
        outputs.parquet,
        outputs.html,
    )


def complexity_figures(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """The branch's figures, each with this run's numbers."""
    from featflow.complexity.report import figures
    from featflow.complexity.spec import ComplexitySpec

    i = inputs
    figures(
        i.table,
        i.vinfo,
        i.dictionary,
        i.codes,
        i.activations,
        i.data,
        i.robustness,
        i.factors,
        ComplexitySpec.from_dict(spec["complexity"]),
        dict(outputs.items()),
        ctx.seed,
    )


def feature_flow(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """Code retention under each residual block's main-branch ablation; I_V and CKA of every feature from each
    block's skip path and main branch."""
    from featflow.complexity.flow import run_flow
    from featflow.complexity.spec import ComplexitySpec
    from featflow.config import ActivationsSpec

    i = inputs
    run_flow(
        ComplexitySpec.from_dict(spec["complexity"]),
        ActivationsSpec.from_dict(spec["experiment"]["activations"]),
        i.checkpoint,
        i.dictionary,
        i.codes,
        i.activations,
        i.data,
        i.vinfo,
        i.factors,
        outputs.h5,
        outputs.table,
        outputs.flow,
        ctx.device,
        ctx.seed,
        ctx.attrs,
        ctx.threads,
    )


def meta_features(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """k-means of the atoms into meta-features: the table and the complexity-sorted gallery of their top images."""
    from featflow.complexity.meta import run_meta_features
    from featflow.complexity.spec import MetaSpec

    run_meta_features(
        MetaSpec.from_dict(spec["complexity"]["meta_features"]),
        spec["complexity"]["split"],
        inputs.dictionary,
        inputs.vinfo,
        inputs.codes,
        inputs.activations,
        inputs.data,
        outputs.table,
        outputs.gallery,
        ctx.seed,
    )
