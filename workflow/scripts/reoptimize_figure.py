"""Rule reoptimize_figure: angular distance vs SSIM after re-optimization."""

from featflow import smk
from featflow.ifv.stage import reoptimize_figure

smk.run(snakemake, reoptimize_figure)  # noqa: F821 (injected by Snakemake)
