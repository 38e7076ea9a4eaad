"""Per-rule cache keys: a rule's ``params.spec`` is the part of its config section that its stage reads.

Snakemake reruns a job when the ``repr`` of a parameter changed (``--rerun-triggers params``). A rule's spec is
:func:`keyed`: the values at the dotted paths its stage function reads (:func:`pick`), as a :class:`Keyed` dict
whose ``repr`` leaves out the *neutral* paths, knobs that trade memory or speed only (batch and chunk sizes,
shards, workers; tests/workflow/test_knobs.py shows that two settings of each give the same outputs). The
script still receives the knobs: a :class:`Keyed` is a plain ``dict`` to it (and pickles as one would).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from featflow.config import merged


def pick(data: Mapping[str, Any], paths: Iterable[str]) -> dict[str, Any]:
    """The sub-mapping of ``data`` at the dotted ``paths`` (``"critical_space"``, ``"activations.pool"``); a path
    absent from ``data`` is left out (the stage's spec then takes its default, as it would from the config)."""
    out: dict[str, Any] = {}
    for path in paths:
        head, _, rest = path.partition(".")
        if head not in data:
            continue
        if rest:
            if isinstance(data[head], Mapping):
                inner = pick(data[head], [rest])
                if inner:
                    out[head] = merged(out.get(head, {}), inner)
        else:
            out[head] = data[head]
    return out


def drop(data: Mapping[str, Any], paths: Iterable[str]) -> dict[str, Any]:
    """``data`` without the dotted ``paths`` (nested mappings copied, never changed in place)."""
    out = {key: dict(value) if isinstance(value, Mapping) else value for key, value in data.items()}
    for path in paths:
        head, _, rest = path.partition(".")
        if head not in out:
            continue
        if rest and isinstance(out[head], Mapping):
            out[head] = drop(out[head], [rest])
        elif not rest:
            del out[head]
    return out


class Keyed(dict):
    """A rule's spec: every value reaches the script; its ``repr`` (what Snakemake stores and compares as the
    parameter) leaves out the ``neutral`` dotted paths."""

    def __init__(self, data: Mapping[str, Any] = (), neutral: Iterable[str] = ()) -> None:
        super().__init__(data)
        self.neutral = tuple(neutral)

    def key(self) -> dict[str, Any]:
        """The values that can change the rule's outputs."""
        return drop(self, self.neutral)

    def __repr__(self) -> str:
        return repr(self.key())


def keyed(data: Mapping[str, Any], paths: Iterable[str] | None = None, neutral: Iterable[str] = ()) -> Keyed:
    """``data`` at ``paths`` (all of it when None) as a :class:`Keyed` spec, ``neutral`` paths out of its key."""
    neutral = tuple(neutral)
    return Keyed(dict(data) if paths is None else pick(data, [*paths, *neutral]), neutral)
