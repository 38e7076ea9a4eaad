"""The verdict of one claim on one experiment from its readings over replicates (training seeds); pure functions.

A reader returns one :class:`Reading` per replicate: the statistic, its bootstrap CI within the replicate (or a
p-value, or neither for a point statistic), and whether the claim's precondition holds there. :func:`verdict`
turns the readings into one of four words (SPEC 6):

- **reproduced**: every seed is on the paper's side of the null and each seed's CI excludes the null;
- **not reproduced**: every seed is significantly on the other side;
- **inconclusive**: anything between (a CI includes the null, or the seeds disagree);
- **not applicable**: the precondition fails (on every seed; on some seeds only, the verdict is inconclusive).

Significance on one seed: with a CI, the CI lies beyond the null; with a p-value only, p <= :data:`ALPHA`; with
neither (a point statistic such as an angle against a chance threshold), the value itself lies beyond the null.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

ALPHA = 0.05
REPRODUCED, INCONCLUSIVE, NOT_REPRODUCED, NOT_APPLICABLE = (
    "reproduced",
    "inconclusive",
    "not reproduced",
    ("not applicable"),
)
VERDICTS = (REPRODUCED, INCONCLUSIVE, NOT_REPRODUCED, NOT_APPLICABLE)
NAN = float("nan")


@dataclass(frozen=True)
class Reading:
    """A claim's statistic on one replicate.

    value : the statistic; low, high : its bootstrap CI within the replicate (NaN: none); p : a test's p-value
    where the claim is tested by one instead of a CI (NaN: none); ok, reason : whether the precondition holds and
    why not (or a note); null : the null of this replicate where it depends on the data (e.g. a chance angle for
    this many logits), else None and the claim's own null.
    """

    value: float
    low: float = NAN
    high: float = NAN
    ok: bool = True
    reason: str = ""
    p: float = NAN
    null: float | None = None

    @property
    def has_ci(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)


def not_applicable(reason: str) -> Reading:
    """A reading whose precondition fails, with the reason in words."""
    return Reading(NAN, ok=False, reason=reason)


@dataclass(frozen=True)
class Verdict:
    """The verdict over the seeds: value (mean over seeds), spread (min, max over seeds), seeds, reason."""

    verdict: str
    reason: str
    value: float
    spread_low: float
    spread_high: float
    seeds: tuple[int, ...]


def side(reading: Reading, direction: str, null: float) -> int:
    """+1: significantly on the paper's side of the null; -1: significantly the other way; 0: neither."""
    sign = 1 if direction == ">" else -1
    if reading.has_ci:
        if sign * (reading.low - null) > 0 and sign * (reading.high - null) > 0:
            return 1
        if sign * (reading.low - null) < 0 and sign * (reading.high - null) < 0:
            return -1
        return 0
    beyond = sign * (reading.value - null)
    if math.isfinite(reading.p) and reading.p > ALPHA:
        return 0
    return 1 if beyond > 0 else -1 if beyond < 0 else 0


def _fmt(x: float) -> str:
    return f"{x:+.3g}" if math.isfinite(x) else "nan"


def describe(seed: int, reading: Reading) -> str:
    """One seed's value, as ``s0 -0.63 [-0.73, -0.51]`` (CI), ``s0 +0.80 (p 0.048)`` or ``s0 +6.3 (point)``."""
    if reading.has_ci:
        detail = f" [{_fmt(reading.low)}, {_fmt(reading.high)}]"
    elif math.isfinite(reading.p):
        detail = f" (p {reading.p:.3g})"
    else:
        detail = " (point)"
    return f"s{seed} {_fmt(reading.value)}{detail}"


def verdict(readings: Sequence[tuple[int, Reading]], direction: str, null: float) -> Verdict:
    """The verdict of a claim (the paper's side ``direction`` ``>`` or ``<`` of ``null``) over ``(seed, reading)``
    of every replicate, with the reason in words (the per-seed values, their CIs and the null; "1 seed" when
    only one replicate exists)."""
    if direction not in (">", "<"):
        raise ValueError(f"direction must be '>' or '<', not {direction!r}")
    seeds = tuple(seed for seed, _ in readings)
    if not readings:
        return Verdict(NOT_APPLICABLE, "no replicate of this experiment in the run", NAN, NAN, NAN, seeds)
    usable = [r.ok and math.isfinite(r.value) for _, r in readings]
    failed = [pair for pair, ok in zip(readings, usable, strict=True) if not ok]
    held = [pair for pair, ok in zip(readings, usable, strict=True) if ok]
    why_failed: dict[str, list[str]] = {}
    for s, r in failed:
        why_failed.setdefault(r.reason or "statistic undefined", []).append(f"s{s}")
    notes = "; ".join(f"{', '.join(names)}: {text}" for text, names in why_failed.items())
    values = [r.value for _, r in held]
    mean = sum(values) / len(values) if values else NAN
    low, high = (min(values), max(values)) if values else (NAN, NAN)
    count = f"{len(readings)} seed" + ("s" if len(readings) > 1 else "")
    if not held:
        return Verdict(NOT_APPLICABLE, f"{notes}; {count}", NAN, NAN, NAN, seeds)
    nulls = {r.null if r.null is not None else null for _, r in held}
    null_text = ", ".join(f"{n:.3g}" for n in sorted(nulls))
    detail = f"{', '.join(describe(s, r) for s, r in held)}; null {null_text}; {count}"
    sides = [side(r, direction, r.null if r.null is not None else null) for _, r in held]
    agree = [(r.value - (r.null if r.null is not None else null)) * (1 if direction == ">" else -1) for _, r in held]
    if failed:
        return Verdict(INCONCLUSIVE, f"precondition fails on some seeds ({notes}); {detail}", mean, low, high, seeds)
    if all(s == 1 for s in sides):
        return Verdict(REPRODUCED, f"every seed agrees and excludes the null: {detail}", mean, low, high, seeds)
    if all(s == -1 for s in sides):
        return Verdict(NOT_REPRODUCED, f"significantly the other way on every seed: {detail}", mean, low, high, seeds)
    if any(a > 0 for a in agree) and any(a < 0 for a in agree):
        return Verdict(INCONCLUSIVE, f"seeds disagree in sign: {detail}", mean, low, high, seeds)
    unsure: dict[str, list[str]] = {}
    for (s, r), side_ in zip(held, sides, strict=True):
        if side_ == 0:
            why = "CI includes the null" if r.has_ci else f"p > {ALPHA:g}" if math.isfinite(r.p) else "at the null"
            unsure.setdefault(why, []).append(f"s{s}")
    if unsure:
        why = "; ".join(f"{text} on {', '.join(names)}" for text, names in unsure.items())
        return Verdict(INCONCLUSIVE, f"{why}: {detail}", mean, low, high, seeds)
    return Verdict(INCONCLUSIVE, f"seeds disagree: {detail}", mean, low, high, seeds)
