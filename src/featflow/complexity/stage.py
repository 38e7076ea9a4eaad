"""The complexity branch's stages, one per rule, each ``stage(spec, inputs, outputs, ctx)`` (featflow.smk.Stage).

``spec`` is the rule's cache key (``{"complexity": ..., "experiment": ...}``, workflow/rules/common.smk), the
files are the rule's, by name. Each stage imports what it runs inside its body, so that a rule's code key covers
only the modules its own stage reaches (featflow.repro.import_closure follows an imported function).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from featflow.smk import Files, Job

if TYPE_CHECKING:
    from featflow.complexity.spec import ComplexitySpec


def _spec(spec: dict[str, Any]) -> ComplexitySpec:
    from featflow.complexity.spec import ComplexitySpec

    return ComplexitySpec.from_dict(spec["complexity"])


def dictionary(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """The overcomplete dictionary of the experiment's dictionary layer (train split), any method."""
    from featflow.complexity.dictionary import dictionary_layer, fit_dictionary

    cx = _spec(spec)
    fit_dictionary(
        cx,
        layer=dictionary_layer(cx.dictionary, list(spec["experiment"]["layers"])),
        activations=inputs.activations,
        checkpoint=inputs.checkpoint,
        out=outputs[0],
        device=ctx.device,
        seed=ctx.seed,
        attrs=ctx.attrs,
    )


def codes(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """The codes of one split with the dictionary fixed, or the merge of its shards."""
    from featflow.complexity.codes import encode_split, merge_codes

    cx = _spec(spec)
    if cx.shards > 1:
        merge_codes(list(inputs.shards), out=outputs[0], attrs=ctx.attrs)
        return
    encode_split(cx, **_code_files(inputs), out=outputs[0], device=ctx.device, attrs=ctx.attrs)


def _code_files(inputs: Files) -> dict[str, Any]:
    return {"dictionary": inputs.dictionary, "activations": inputs.activations, "checkpoint": inputs.checkpoint}


def codes_shard(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """The codes of one contiguous slice of a split (``complexity.shards`` > 1)."""
    from featflow.complexity.codes import encode_split

    cx = _spec(spec)
    encode_split(
        cx,
        **_code_files(inputs),
        out=outputs[0],
        device=ctx.device,
        attrs=ctx.attrs,
        shard=int(ctx.wildcards.shard),
        shards=cx.shards,
    )


def complexity(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """I_V of every feature and planted factor from every layer, and K."""
    from featflow.complexity.vinfo import compute_vinfo

    compute_vinfo(
        _spec(spec),
        codes=inputs.codes,
        activations=inputs.activations,
        data=inputs.data,
        dictionary=inputs.dictionary,
        out=outputs.vinfo,
        factors_csv=outputs.factors,
        seed=ctx.seed,
        attrs=ctx.attrs,
    )


def redundancy(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """Redundancy of every feature under random neuron masks of the dictionary layer."""
    from featflow import store
    from featflow.complexity.redundancy import compute_redundancy

    compute_redundancy(
        _spec(spec),
        codes=inputs.codes,
        activations=inputs.activations,
        layer=store.read_attrs(inputs.dictionary, "complexity-dictionary")["layer"],
        out=outputs[0],
        seed=ctx.seed,
        attrs=ctx.attrs,
    )


def _robustness(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job, *, shard: int, shards: int) -> None:
    from featflow.complexity.robustness import compute_robustness

    compute_robustness(
        _spec(spec),
        checkpoint=inputs.checkpoint,
        data=inputs.data,
        dictionary=inputs.dictionary,
        pool_mode=spec["experiment"]["activations"]["pool"],
        out=outputs[0],
        device=ctx.device,
        seed=ctx.seed,
        attrs=ctx.attrs,
        shard=shard,
        shards=shards,
    )


def robustness(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """Sensitivity of every feature to Gaussian input noise and the accuracy under it, or the merge of its shards."""
    from featflow.complexity.robustness import merge_robustness

    cx = _spec(spec)
    if cx.shards > 1:
        merge_robustness(cx, list(inputs.shards), out=outputs[0], attrs=ctx.attrs)
    else:
        _robustness(spec, inputs, outputs, ctx, shard=0, shards=1)


def robustness_shard(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """The summed robustness statistics of one contiguous slice of the images (``complexity.shards`` > 1)."""
    _robustness(spec, inputs, outputs, ctx, shard=int(ctx.wildcards.shard), shards=_spec(spec).shards)


def importance(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """Importance of every feature for the classifier (gradient x input of the codes)."""
    from featflow.complexity.importance import compute_importance

    compute_importance(
        _spec(spec),
        checkpoint=inputs.checkpoint,
        codes=inputs.codes,
        activations=inputs.activations,
        dictionary=inputs.dictionary,
        out=outputs[0],
        attrs=ctx.attrs,
    )


def dictionary_quality(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """The dictionary's quality numbers (R^2, L0, dead features, accuracy recovered, seed stability)."""
    from featflow.complexity.quality import dictionary_quality as quality

    quality(
        _spec(spec),
        experiment=ctx.wildcards.experiment,
        dictionary=inputs.dictionary,
        codes=inputs.codes,
        activations=inputs.activations,
        csv=outputs.csv,
        html=outputs.html,
        attrs=ctx.attrs,
    )


def feature_table(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """The feature table, a row per feature, and its HTML view for the report."""
    from featflow.complexity.report import feature_table as write_table

    i = inputs
    write_table(
        dict_path=i.dictionary,
        codes_path=i.codes,
        vinfo_path=i.vinfo,
        redundancy_path=i.redundancy,
        robustness_path=i.robustness,
        importance_path=i.importance,
        csv=outputs.csv,
        parquet=outputs.parquet,
        html=outputs.html,
    )


def complexity_figures(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """The branch's figures, each with this run's numbers."""
    from featflow.complexity.report import figures

    i = inputs
    figures(
        table_path=i.table,
        vinfo_path=i.vinfo,
        dict_path=i.dictionary,
        codes_path=i.codes,
        acts_path=i.activations,
        data_path=i.data,
        robustness_path=i.robustness,
        factors_csv=i.factors,
        spec=_spec(spec),
        outs=dict(outputs.items()),
        seed=ctx.seed,
    )


def feature_flow(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """Code retention under each residual block's main-branch ablation; I_V and CKA of every feature from each
    block's skip path and main branch."""
    from featflow.complexity.flow import run_flow
    from featflow.config import ActivationsSpec

    i = inputs
    run_flow(
        _spec(spec),
        ActivationsSpec.from_dict(spec["experiment"]["activations"]),
        checkpoint=i.checkpoint,
        dict_path=i.dictionary,
        codes_path=i.codes,
        acts_path=i.activations,
        data_path=i.data,
        vinfo_path=i.vinfo,
        factors_csv=i.factors,
        out=outputs.h5,
        table_csv=outputs.table,
        figure=outputs.flow,
        device=ctx.device,
        seed=ctx.seed,
        attrs=ctx.attrs,
        threads=ctx.threads,
    )


def meta_features(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """k-means of the atoms into meta-features: the table and the complexity-sorted gallery of their top images."""
    from featflow.complexity.meta import run_meta_features
    from featflow.complexity.spec import MetaSpec

    run_meta_features(
        MetaSpec.from_dict(spec["complexity"]["meta_features"]),
        split=spec["complexity"]["split"],
        dict_path=inputs.dictionary,
        vinfo_path=inputs.vinfo,
        codes_path=inputs.codes,
        acts_path=inputs.activations,
        data_path=inputs.data,
        table=outputs.table,
        figure=outputs.gallery,
        seed=ctx.seed,
    )
