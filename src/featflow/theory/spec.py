"""The ``theory`` section's checks, apart from the stages: the Snakefile runs them when it parses the rules, without
importing the training code (and scikit-learn behind it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from featflow.theory.two_layer import TheorySpec


def check_theory_config(config: Mapping[str, Any]) -> TheorySpec:
    """The validated ``theory`` section as a spec; its data set names must be ``shi`` data sets of the right
    family (ValueError naming the key otherwise)."""
    spec = TheorySpec.from_dict(config["theory"])
    datasets = config["datasets"]
    for key, structured in (("structured", True), ("unstructured", False)):
        name = getattr(spec, key)
        if name not in datasets or datasets[name]["kind"] != "shi":
            shi = sorted(n for n, d in datasets.items() if d["kind"] == "shi")
            raise ValueError(
                f"config key 'theory.{key}': '{name}' is not a data set of kind shi; expected one of {shi}"
            )
        if datasets[name]["shi"]["structured"] is not structured:
            raise ValueError(
                f"config key 'theory.{key}': data set '{name}' has shi.structured = "
                f"{datasets[name]['shi']['structured']}, expected {structured}"
            )
    return spec
