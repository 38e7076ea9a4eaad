"""Rule adversarial_maps: essential vs adversarial frequency maps of one model and their IdCor (SPEC 3.2)."""

from featflow import smk
from featflow.frequency.stage import adversarial_maps

smk.run(snakemake, adversarial_maps)  # noqa: F821 (injected by Snakemake)
