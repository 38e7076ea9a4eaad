"""Stages of the trained networks and what they compute (``stage(spec, inputs, outputs, ctx)``,
featflow.smk.Stage): training (and its checkpoints over training), and the pooled activations of an experiment's
layers (of a checkpoint's too). Imports stay inside each stage (featflow.repro.import_closure)."""

from __future__ import annotations

from typing import Any

from featflow.smk import Files, Job


def train(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """Train a model (or load local weights) and write its checkpoint."""
    from featflow.config import ModelSpec
    from featflow.models.train import train_model

    train_model(
        ModelSpec.from_dict(spec), inputs.data, outputs[0], device=ctx.device, attrs=ctx.attrs, workers=ctx.threads
    )


def activations(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """The experiment's layers on one split, extracted in one job or merged from its shards."""
    from featflow.activations import extract_to_h5, merge_shards
    from featflow.config import ExperimentSpec

    exp = ExperimentSpec.from_dict(spec)
    if exp.activations.shards > 1:
        merge_shards(inputs.shards, outputs[0], ctx.attrs)
    else:
        extract_to_h5(
            inputs.checkpoint,
            inputs.data,
            ctx.wildcards.split,
            exp.layers,
            exp.activations,
            outputs[0],
            device=ctx.device,
            attrs=ctx.attrs,
            threads=ctx.threads,
        )


def activations_shard(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """One contiguous slice of a split's activations (scale-out)."""
    from featflow.activations import extract_shard_to_h5
    from featflow.config import ExperimentSpec

    exp = ExperimentSpec.from_dict(spec)
    extract_shard_to_h5(
        inputs.checkpoint,
        inputs.data,
        ctx.wildcards.split,
        exp.layers,
        exp.activations,
        shard=int(ctx.wildcards.shard),
        out_path=outputs[0],
        device=ctx.device,
        attrs=ctx.attrs,
        threads=ctx.threads,
    )


def train_checkpoint(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """The model's training run stopped after ``{epoch}`` epochs (same schedule, seed and batches)."""
    from featflow.config import ModelSpec
    from featflow.models.train import train_model

    train_model(
        ModelSpec.from_dict(spec),
        inputs.data,
        outputs[0],
        device=ctx.device,
        attrs=ctx.attrs,
        workers=ctx.threads,
        epoch=int(ctx.wildcards.epoch),
    )


def checkpoint_activations(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """The experiment's layers from one checkpoint."""
    from featflow.activations import extract_to_h5
    from featflow.config import ExperimentSpec

    exp = ExperimentSpec.from_dict(spec)
    extract_to_h5(
        inputs.checkpoint,
        inputs.data,
        ctx.wildcards.split,
        exp.layers,
        exp.activations,
        outputs[0],
        device=ctx.device,
        attrs=ctx.attrs,
        threads=ctx.threads,
    )
