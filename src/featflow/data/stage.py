"""The data stage (``stage(spec, inputs, outputs, ctx)``, featflow.smk.Stage): one data set file."""

from __future__ import annotations

from typing import Any

from featflow.smk import Files, Job


def data(spec: dict[str, Any], inputs: Files, outputs: Files, ctx: Job) -> None:
    """Materialize a data set (or index a folder one) from its config entry."""
    from featflow.config import DatasetSpec
    from featflow.data import write_dataset

    write_dataset(DatasetSpec.from_dict(spec), outputs[0], ctx.attrs)
