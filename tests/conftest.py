"""Suite-wide hooks: which tests must share one pytest-xdist worker (``make test`` runs ``-n 2 --dist loadgroup``)."""

from __future__ import annotations

import pytest


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which turns the marks into node-id suffixes
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on the shared tiny DAG run (``dag_run``, which some of them edit and dry-run) go to one worker, so the
    run is built once and never edited by two tests at a time; so do the tests on the one local SLURM cluster."""
    for item in items:
        if "dag_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("dag"))
        elif item.path.parent.name == "cluster":
            item.add_marker(pytest.mark.xdist_group("slurm"))
