"""How a bill is split between the pooled fund, the personal account and cash.

The demo follows the published policy shape rather than any one city's exact rules: the fund
pays a share of the in-policy amount that is 7 points lower at each higher hospital level
(the 5-10 point gap the 2020 policies require, same online as offline), residents get less than
employees, and cross-province care is reimbursed at the treatment place's catalogue with the
insured place's ratios, which nationally came to a 59 % fund share (seeds/002).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from connectors.demo.institutions import NONE, PRIMARY, SECONDARY, TERTIARY

# Share of the in-policy amount the pooled fund pays, by (insurance type, level).
_IN_PROVINCE = {
    ("EMPLOYEE", PRIMARY): 0.90,
    ("EMPLOYEE", SECONDARY): 0.83,
    ("EMPLOYEE", TERTIARY): 0.76,
    ("RESIDENT", PRIMARY): 0.80,
    ("RESIDENT", SECONDARY): 0.73,
    ("RESIDENT", TERTIARY): 0.66,
    ("EMPLOYEE", NONE): 0.70,
    ("RESIDENT", NONE): 0.55,  # retail pharmacy (门诊统筹 at 药店)
}
# Cross-province care: lower ratios (insured-place rules for care elsewhere), calibrated so that
# the demo's aggregate fund share lands near the national 59 %.
_CROSS_PROVINCE = {
    ("EMPLOYEE", PRIMARY): 0.79,
    ("EMPLOYEE", SECONDARY): 0.72,
    ("EMPLOYEE", TERTIARY): 0.65,
    ("RESIDENT", PRIMARY): 0.74,
    ("RESIDENT", SECONDARY): 0.67,
    ("RESIDENT", TERTIARY): 0.60,
}
# Above this, a personal account is not drawn on for one bill (demo rule).
_ACCOUNT_CAP_FEN = 200_000


@dataclass(frozen=True)
class Split:
    total: int
    in_policy: int
    fund: int
    acct: int
    cash: int


def split(
    rng: random.Random, total: int, *, level: str, insutype: str, cross: bool, inpatient: bool
) -> Split:
    """Split ``total`` fen exactly: total = fund + acct + cash, in_policy <= total."""
    in_policy = total - int(total * rng.uniform(0.04, 0.14))  # self-paid items (自费)
    rate = (_CROSS_PROVINCE if cross else _IN_PROVINCE)[(insutype, level)]
    fund = int(in_policy * rate * rng.uniform(0.97, 1.03))
    rest = total - fund
    acct = 0
    # Only employees have a personal account; it mostly covers small outpatient co-payments.
    if insutype == "EMPLOYEE" and rest > 0 and rng.random() < 0.7:
        acct = min(int(rest * (0.3 if inpatient else rng.uniform(0.5, 1.0))), _ACCOUNT_CAP_FEN)
    return Split(total, in_policy, fund, acct, total - fund - acct)
