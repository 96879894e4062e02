"""Differentially private releases with OpenDP: the noise is OpenDP's, never ours.

A statistic's cells are released as one vector per measure (row counts, distinct persons,
sums in fen) through OpenDP's vector Laplace mechanism over floats (which samples a discrete
Laplace on a fine grid, so the float rounding of the noise leaks nothing). The values are
floats because the sources bound each person's *total* contribution in SQL by scaling the
cells of a person over the bound (see :mod:`connectors.statistics.plan`): one person moves the
vector by at most ``sources x bound`` in L1 (the bound being the measure's: rows, cells,
or the total of a sum). OpenDP's privacy map then says what the release costs; that figure,
rounded *up* to a millionth, is what the ledger charges (its float arithmetic can exceed the
asked epsilon by ~1e-8). Each release also says its noise scale and the half-width of its
95 % interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import opendp.prelude as dp

from security.errors import MedfedError

dp.enable_features("contrib")

MICRO = 1_000_000  # the ledger counts epsilon in millionths, exactly
CONFIDENCE = 0.95


class DPError(MedfedError, ValueError):
    """A release that cannot be made as asked (an epsilon or a sensitivity out of range)."""


@dataclass(frozen=True)
class Release:
    values: list[float]
    scale: float  # of the discrete Laplace noise added to each value
    epsilon: float  # what OpenDP's privacy map says the release costs
    half_width: float  # of the 95 % interval around each value

    @property
    def micro_epsilon(self) -> int:
        return epsilon_micro(self.epsilon)


def epsilon_micro(epsilon: float) -> int:
    return math.ceil(round(epsilon * MICRO, 3))


def laplace(values: Sequence[float], sensitivity: float, epsilon: float) -> Release:
    """Release ``values`` (one cell each) with epsilon-DP for an L1 ``sensitivity``."""
    if not 0 < epsilon <= 100 or not sensitivity >= 1:
        raise DPError("epsilon must be in (0, 100] and the sensitivity at least 1")
    if not all(math.isfinite(v) for v in values):
        raise DPError("every value released must be a finite number")
    scale = float(sensitivity) / epsilon
    measurement = dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T=float, nan=False)),
        dp.l1_distance(T=float),
        scale=scale,
    )
    charged = float(measurement.map(float(sensitivity)))
    noisy = measurement([float(v) for v in values]) if values else []
    half = dp.laplacian_scale_to_accuracy(scale, 1 - CONFIDENCE)
    return Release([float(v) for v in noisy], scale, charged, float(half))
