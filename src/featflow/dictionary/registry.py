"""The registry of dictionary methods (:mod:`featflow.dictionary.base`'s contract).

A method is one module exposing ``METHOD`` (a :class:`~featflow.dictionary.base.Method`) and one line below; the
modules are imported when a method is asked for.
"""

from __future__ import annotations

import importlib

from featflow.dictionary.base import Method

METHODS = {
    "nmf": "featflow.dictionary.nmf",
    "seminmf": "featflow.dictionary.seminmf",
    "topk": "featflow.dictionary.topk",
    "file": "featflow.dictionary.loaded",
}


def method(name: str) -> Method:
    """The registered method ``name`` (config key ``complexity.dictionary.method``)."""
    if name not in METHODS:
        raise ValueError(f"complexity.dictionary.method '{name}': expected one of {sorted(METHODS)}")
    return importlib.import_module(METHODS[name]).METHOD
