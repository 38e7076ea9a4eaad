"""Stages of the frequency rules, one per rule (``stage(spec, inputs, outputs, ctx)``, featflow.smk.Stage); the
work is in featflow.frequency's modules. Imports stay inside each stage (featflow.repro.import_closure)."""

from __future__ import annotations

from typing import Any

from featflow.smk import Files, Job


def fourier_mask(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """The data-set and per-image Fourier masks of essential frequencies of one model."""
    from featflow.frequency.fourier_masks import fourier_mask_analysis
    from featflow.frequency.spec import MasksSpec

    fourier_mask_analysis(
        inputs.checkpoint,
        inputs.data,
        MasksSpec.from_dict(spec),
        outputs[0],
        device=ctx.device,
        seed=ctx.seed,
        attrs=ctx.attrs,
    )


def fourier_mask_figures(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """The masks of the compared models side by side: bands, summary, figures."""
    from featflow.frequency.figures import write_mask_comparison

    o = outputs
    paths = dict(zip(ctx.params.models, inputs.masks, strict=True))
    write_mask_comparison(paths, o.bands, o.summary, o.radial, o.angular, o.gallery)


def adversarial_maps(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """Frequency maps of adversarial perturbations against the essential-frequency masks."""
    from featflow.frequency.freq_maps import adversarial_frequency_maps
    from featflow.frequency.spec import MapsSpec

    adversarial_frequency_maps(
        inputs.checkpoint,
        inputs.data,
        MapsSpec.from_dict(spec),
        outputs.maps,
        outputs.table,
        device=ctx.device,
        seed=ctx.seed,
        attrs=ctx.attrs,
    )


def adversarial_maps_figure(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """The maps' figure with their correlations."""
    from featflow.frequency.figures import write_maps_figure

    write_maps_figure(inputs.maps, inputs.table, outputs.figure)


def idcor(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """IdCor between one pair of layers, with its null distributions."""
    from featflow import store
    from featflow.frequency.idcor import layer_idcor
    from featflow.frequency.spec import IdCorSpec

    s, wc = IdCorSpec.from_dict(spec), ctx.wildcards
    table = layer_idcor(
        inputs[0], [(wc.layer_a, wc.layer_b)], s.n_perm, s.max_samples, s.fraction, device=ctx.device, seed=ctx.seed
    )
    store.write_table(table, outputs[0])


def idcor_table(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """The experiment's IdCor pairs in one table."""
    import pandas as pd

    from featflow import store

    store.write_table(pd.concat([store.read_table(path) for path in inputs], ignore_index=True), outputs[0])


def idcor_figure(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """IdCor per layer pair against its nulls."""
    from featflow import store
    from featflow.frequency.figures import idcor_numbers
    from featflow.plots.frequency import idcor_bars

    table = store.read_table(inputs[0])
    store.save_figure(idcor_bars(table), outputs.figure, idcor_numbers(table))
