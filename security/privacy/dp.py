"""Differentially private releases with OpenDP: the noise is OpenDP's, never ours.

A statistic's cells are released as one integer vector per measure (row counts, distinct
persons, sums in fen) through OpenDP's vector Laplace mechanism, which samples the discrete
Laplace distribution for integers. The vector's L1 sensitivity comes from the contribution
bounds the sources applied in SQL (each person's first ``rows_per_person`` rows per source,
each summed value clamped to ``[0, clamp]``): one person moves the vector by at most
``sources x rows_per_person`` (counts, persons) or ``sources x rows_per_person x clamp``
(sums). OpenDP's privacy map then says what the release costs; that figure, rounded *up* to
a millionth, is what the ledger charges (its float arithmetic can exceed the asked epsilon
by ~1e-8). Each release also says its noise scale and the half-width of its 95 % interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import opendp.prelude as dp

dp.enable_features("contrib")

MICRO = 1_000_000  # the ledger counts epsilon in millionths, exactly
CONFIDENCE = 0.95


class DPError(ValueError):
    """A release that cannot be made as asked (an epsilon or a sensitivity out of range)."""


@dataclass(frozen=True)
class Release:
    values: list[int]
    scale: float  # of the discrete Laplace noise added to each value
    epsilon: float  # what OpenDP's privacy map says the release costs
    half_width: float  # of the 95 % interval around each value

    @property
    def micro_epsilon(self) -> int:
        return epsilon_micro(self.epsilon)


def epsilon_micro(epsilon: float) -> int:
    return math.ceil(round(epsilon * MICRO, 3))


def laplace(values: Sequence[int], sensitivity: int, epsilon: float) -> Release:
    """Release ``values`` (one cell each) with epsilon-DP for an L1 ``sensitivity``."""
    if not 0 < epsilon <= 100 or sensitivity < 1:
        raise DPError("epsilon must be in (0, 100] and the sensitivity at least 1")
    measurement = dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T="i64")),
        dp.l1_distance(T="i64"),
        scale=float(sensitivity) / epsilon,
    )
    charged = float(measurement.map(int(sensitivity)))
    noisy = measurement([int(v) for v in values]) if values else []
    scale = float(sensitivity) / epsilon
    half = dp.discrete_laplacian_scale_to_accuracy(scale, 1 - CONFIDENCE)
    return Release([int(v) for v in noisy], scale, charged, float(half))
