"""A fitted dictionary in the complexity branch's ``dictionary.h5`` [complexity-dictionary], any method.

The file holds ``atoms`` (k, d) at its root (what torch-free readers such as the figures read), the method's other
arrays (:meth:`~featflow.dictionary.base.Dictionary.state`) under ``state/``, a second seed's under ``seed2/``
(its atoms also as ``atoms_seed2``), and the attributes ``method`` and ``layer``. :func:`read` rebuilds the
dictionary through the registry: the FV pictures, the temporal and flow stages read it the same way.
"""

from __future__ import annotations

import os
from typing import Any

import h5py
import torch

from featflow import store
from featflow.dictionary.base import Dictionary
from featflow.dictionary.registry import method
from featflow.dictionary.spec import DictionarySpec

KIND = "complexity-dictionary"
FIRST, SECOND = "state", "seed2"


def write(handle: h5py.File, dictionary: Dictionary, which: str = FIRST) -> None:
    """Store ``dictionary``'s arrays in an open dictionary file (``which``: the first seed or the second)."""
    state = dictionary.state()
    store.create_array(handle, "atoms" if which == FIRST else "atoms_seed2", state.pop("atoms"))
    for name, array in state.items():
        store.create_array(handle, f"{which}/{name}", array)


def read(
    path: str | os.PathLike, spec: DictionarySpec, device: torch.device | str = "cpu", which: str = FIRST
) -> Dictionary:
    """The dictionary stored in ``path`` (the second seed's with ``which="seed2"``), coded as ``spec`` says (the
    NNLS keys of nmf / seminmf). The file's method must be ``spec.method``: a stale file is an error."""
    attrs = store.read_attrs(path, KIND)
    stored = attrs.get("method")
    if stored != spec.method:
        raise store.StoreError(
            f"{path}: a '{stored}' dictionary, but complexity.dictionary.method is '{spec.method}'; rerun its "
            "dictionary job"
        )
    names = list(store.shapes(path, KIND))
    atoms = "atoms" if which == FIRST else "atoms_seed2"
    if atoms not in names:
        raise store.StoreError(f"{path}: no {atoms}; expected a dictionary file with complexity.dictionary.second_seed")
    items = store.read_items(path, KIND, [atoms, *(n for n in names if n.startswith(f"{which}/"))])
    arrays: dict[str, Any] = {"atoms": items.pop(atoms)}
    arrays.update({name.split("/", 1)[1]: value for name, value in items.items()})
    return method(spec.method).load(arrays, spec, torch.device(device))


def has_second(path: str | os.PathLike) -> bool:
    """Whether the file holds a second seed's dictionary."""
    return "atoms_seed2" in store.shapes(path, KIND)
