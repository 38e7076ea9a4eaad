"""More activation shards than a split's samples are refused when the config is checked, naming the key."""

from __future__ import annotations

import copy

import pytest

from featflow.config import ConfigError
from featflow.names import checked
from tests.workflow.test_targets import MINIMAL


def _config(shards: int, max_samples: int | None = None, n_test: int = 32) -> dict:
    config = copy.deepcopy(MINIMAL)
    config["datasets"]["planted"]["n_test"] = n_test
    config["experiments"]["planted"]["activations"] = {"shards": shards, "max_samples": max_samples}
    return config


def test_as_many_shards_as_samples_pass():
    checked(_config(shards=32))
    checked(_config(shards=10, max_samples=10))


@pytest.mark.parametrize(
    ("shards", "max_samples", "message"),
    [
        (33, None, r"'experiments\.planted\.activations\.shards': 33 shards for at most 32 test samples "
                   r"\(datasets\.planted\.n_test\)"),
        (11, 10, r"'experiments\.planted\.activations\.shards': 11 shards for at most 10 (train|test) samples "
                 r"\(datasets\.planted\.n_(train|test), activations\.max_samples\)"),
    ],
)  # fmt: skip
def test_more_shards_than_samples_are_refused(shards, max_samples, message):
    with pytest.raises(ConfigError, match=message):
        checked(_config(shards=shards, max_samples=max_samples))
