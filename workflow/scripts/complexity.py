"""Rule complexity: V-information of every feature and planted factor from every layer; complexity K."""

from featflow import smk
from featflow.complexity.stage import complexity

smk.run(snakemake, complexity)  # noqa: F821 (injected by Snakemake)
