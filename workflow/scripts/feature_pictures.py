"""Rule feature_pictures: FV of the simplest and most complex atoms' directions, beside their top images."""

from featflow import smk
from featflow.fv.stage import feature_pictures

smk.run(snakemake, feature_pictures)  # noqa: F821 (injected by Snakemake)
