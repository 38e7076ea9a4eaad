"""Rule adversarial_maps_figure: mean essential and adversarial maps of one model."""

from featflow import smk
from featflow.frequency.freq_maps import write_maps_figure

with smk.job(snakemake) as job:  # noqa: F821 (injected by Snakemake)
    write_maps_figure(snakemake.input.maps, snakemake.input.table, snakemake.output.figure)  # noqa: F821
