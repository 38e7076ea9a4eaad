"""Typed spec of one FV/IFV experiment (the ``fv:`` config section, src/featflow/schemas/fv.schema.yaml)."""

from __future__ import annotations

import dataclasses

from featflow.config import Spec


@dataclasses.dataclass(frozen=True)
class CriticalSpaceSpec(Spec):
    """Algorithm 1 on the first ``n_samples`` Jacobians, rho searched in [rho_min, rho_max] (SPEC 2.4); ``select``
    names the rule that picks the space IFV uses (featflow.ifv.critical_space.select_space)."""

    n_samples: int = 32
    rho_min: float = 1e-6
    rho_max: float = 0.999
    grid: int = 9
    select: str = "paper"


@dataclasses.dataclass(frozen=True)
class ReoptimizeSpec(Spec):
    """Adam re-optimization of (the first ``n_samples``) realizations under other objectives (SPEC 2.5)."""

    steps: int = 500
    n_samples: int | None = None
    unstable_ssim: float = 0.7


@dataclasses.dataclass(frozen=True)
class StationaritySpec(Spec):
    """A realization counts as stationary when its FV gradient vanishes (``grad_rel`` <= ``max_grad_rel``); IFV
    recovers its target (reported apart) when the target is within ``max_residual_ratio`` of the best residual
    any objective IFV can return."""

    max_grad_rel: float = 1e-3
    max_residual_ratio: float = 2.0


@dataclasses.dataclass(frozen=True)
class FVSpec(Spec):
    """One point of the paper's experiment grid: model x layer x n_f x Agg x k x parametrization."""

    model: str
    layer: str
    n_f: int | None = None
    aggregation: str = "maxpool_mean"
    k: int = 2
    parametrization: str = "rgb"
    decorrelate: bool = False
    spectrum_images: int = 2000
    dtype: str = "float32"
    lr: float = 0.05
    adam_steps: int = 800
    lbfgs_steps: int = 300
    n_sparse: int = 150
    include_canonical: bool = True
    batch_size: int = 256
    store_jacobian: bool = True
    jacobian_chunk: int = 64
    sample_chunk: int = 16
    critical_space: CriticalSpaceSpec = CriticalSpaceSpec()
    reoptimize: ReoptimizeSpec = ReoptimizeSpec()
    stationarity: StationaritySpec = StationaritySpec()
    invert_with: tuple[str, ...] = ()
