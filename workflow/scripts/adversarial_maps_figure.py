"""Rule adversarial_maps_figure: mean essential and adversarial maps of one model."""

from featflow import smk
from featflow.frequency.stage import adversarial_maps_figure

smk.run(snakemake, adversarial_maps_figure)  # noqa: F821 (injected by Snakemake)
