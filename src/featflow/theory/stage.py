"""Stages of the theory rules, one per rule (``stage(spec, inputs, outputs, ctx)``, featflow.smk.Stage); the work
is in featflow.theory.run. Imports stay inside each stage (featflow.repro.import_closure)."""

from __future__ import annotations

from typing import Any

from featflow.smk import Files, Job


def theory_train(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """The two-layer network (two aggressive steps, then small steps) on one shi data set."""
    from featflow.theory.run import train_to_h5

    train_to_h5(spec, inputs.data, outputs[0], seed=ctx.seed, attrs=ctx.attrs)


def theory_baselines(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """The fixed-feature models on one shi data set, each solved to its optimum too."""
    from featflow.theory.run import baselines_to_h5

    baselines_to_h5(spec, inputs.data, outputs[0], seed=ctx.seed, attrs=ctx.attrs)


def theory_alignment(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """Neuron alignment with the class-relevant patterns, probes and MDS maps."""
    from featflow.theory.run import alignment_to_h5

    alignment_to_h5(spec, inputs.network, inputs.data, outputs[0], seed=ctx.seed, attrs=ctx.attrs)


def theory_figure_accuracy(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """Test accuracy vs steps of every model on both families, and the final table."""
    from featflow.theory.figures import accuracy_outputs

    accuracy_outputs(list(inputs.networks), list(inputs.baselines), ctx.params.families, outputs.figure, outputs.table)


def theory_figure_alignment(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """MDS maps of the neurons and the effective features, one row per family."""
    from featflow.theory.figures import alignment_outputs

    alignment_outputs(list(inputs.alignments), ctx.params.families, outputs[0])
