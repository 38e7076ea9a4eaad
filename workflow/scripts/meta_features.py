"""Rule meta_features: k-means of the dictionary's atoms into meta-features, a complexity-sorted gallery."""

from featflow import smk
from featflow.complexity.stage import meta_features

smk.run(snakemake, meta_features)  # noqa: F821 (injected by Snakemake)
