"""The one dictionary contract every method meets (SPEC 1.2; overcomplete's ``fit / encode / decode``).

A fitted :class:`Dictionary` has decoder atoms ``D`` (k, d), the ``d_i`` of importance and of the pictures,
``encode`` (n, d) -> (n, k) codes and ``decode`` (n, k) -> (n, d) reconstructions, and says whether its atoms and
codes may be negative. A :class:`Method` fits one from a layer's :class:`Rows` (the whole matrix or streamed
passes of batches, read from the activations file on demand) and rebuilds one from the arrays it stored
(``state``) and its config section. The registry of methods is :data:`featflow.dictionary.registry.METHODS`;
the complexity stages know this contract, never a method.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from featflow.dictionary.spec import DictionarySpec
from featflow.metrics.nnls import CodesReport


@runtime_checkable
class Dictionary(Protocol):
    """A fitted dictionary: ``atoms`` (k, d), the decoder rows, on the device codes are computed on."""

    atoms: torch.Tensor

    @property
    def signed_atoms(self) -> bool:
        """Whether atoms may have negative entries (Semi-NMF, SAEs): then nothing downstream may assume D >= 0."""
        ...

    @property
    def signed_codes(self) -> bool:
        """Whether codes may be negative."""
        ...

    def encode(self, a: torch.Tensor) -> torch.Tensor:
        """(n, d) activations -> (n, k) codes."""
        ...

    def encode_report(self, a: torch.Tensor) -> tuple[torch.Tensor, CodesReport | None]:
        """Codes and, for an iterative encoder, how they met its tolerance (None: a closed-form encoder)."""
        ...

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(n, k) codes -> (n, d) reconstructions."""
        ...

    def state(self) -> dict[str, np.ndarray]:
        """The arrays that, with the method's config section, rebuild this dictionary (``atoms`` among them)."""
        ...

    def to(self, device: torch.device | str) -> Dictionary:
        """The same dictionary on ``device``."""
        ...


@dataclass(frozen=True)
class Rows:
    """A layer's samples for a fit, read on demand: ``read(rows)`` returns those rows (a slice) as a float array.

    ``matrix`` loads all of them (a full-batch fit); ``batches`` streams one pass of about ``size`` rows per batch,
    in file order or, given a generator, in a shuffled order of contiguous blocks (an SAE's epochs), so memory does
    not grow with ``n``. ``per_item``: rows each of the ``n`` stored items yields (an image's positions when a
    dictionary is fit on every position of a layer's maps; 1 otherwise).
    """

    n: int
    d: int
    read: Callable[[slice], np.ndarray]
    device: torch.device
    per_item: int = 1

    def matrix(self) -> torch.Tensor:
        """(n, d) float32 on the device."""
        return torch.from_numpy(np.asarray(self.read(slice(0, self.n)))).float().to(self.device)

    def batches(self, size: int, generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
        """One pass of float32 batches of about ``size`` rows on the device."""
        step = max(1, size // self.per_item)
        starts = torch.arange(0, self.n, step)
        if generator is not None:
            starts = starts[torch.randperm(len(starts), generator=generator, device=generator.device).cpu()]
        for start in starts.tolist():
            yield torch.from_numpy(np.asarray(self.read(slice(start, start + step)))).float().to(self.device)


@dataclass(frozen=True)
class FitContext:
    """What every fit gets besides the rows: atoms ``k``, a seeded generator on the device, the layer's name (for
    errors that name it)."""

    k: int
    generator: torch.Generator
    layer: str


@dataclass(frozen=True)
class Method:
    """One dictionary method: how it fits and how it is rebuilt from the arrays it stored.

    ``fit(rows, spec, ctx)`` returns a :class:`Dictionary`; ``load(arrays, spec, device)`` rebuilds the one whose
    ``state()`` gave ``arrays``; ``spec`` is the whole ``complexity.dictionary`` section
    (:class:`featflow.dictionary.spec.DictionarySpec`), of which a method reads its own keys.
    ``nonnegative_input``: the method needs activations >= 0 (NMF), checked on the layer before the fit.
    ``seeded``: a fit depends on the seed (False for a dictionary read from a file: no second seed to compare).
    ``check(spec, width, layer)``: the config-time check of the method's own keys against the layer's pooled width
    (before any job; raises ValueError naming the key), where the method has one.
    """

    name: str
    fit: Callable[[Rows, DictionarySpec, FitContext], Dictionary]
    load: Callable[[dict[str, np.ndarray], DictionarySpec, torch.device], Dictionary]
    nonnegative_input: bool = False
    seeded: bool = True
    check: Callable[[DictionarySpec, int, str], object] | None = None
    summary: str = ""
