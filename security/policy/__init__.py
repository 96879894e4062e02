"""Field-level authorization: the rules (``security/policy.toml``), the pure ``decide``
function the enforcement point calls, the break-glass ledger and the table of docs/policy.md."""

from security.policy.decide import decide, make_decider
from security.policy.rules import Policy, PolicyError, default_policy, load

__all__ = ["Policy", "PolicyError", "decide", "default_policy", "load", "make_decider"]
