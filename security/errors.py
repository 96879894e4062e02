"""The root of medfed's own exceptions: callers catch :class:`MedfedError`, one thing.

Each error says what a caller can act on: a stable ``code`` (what clients and logs match), the
``key`` it concerns when there is one (a setting such as ``audit.max_batch``, a header such as
``X-Purpose-Of-Use``), and the HTTP ``status`` it becomes when it is answered as a refusal
(``gateway.edge.responses`` writes every such answer). It lives in the lowest layer so that
every package may raise it. The tree (module of each class in brackets)::

    MedfedError
    ├── ConfigError [gateway.config]             a setting of medfed.toml / MEDFED_*; key
    ├── UsageError [gateway.cli]                 a command line the user can fix
    ├── Refusal [gateway.edge.trusted]           a request refused before execution; status
    ├── BodyRefused [gateway.edge.body]          a body that is not JSON the gateway accepts
    ├── SealingRefused [gateway.sealing]         an answer that cannot be sealed
    ├── AuditUnavailable [gateway.audit_http]    the audit log cannot be read now
    ├── CompositionError [schema.federation]     the supergraph does not compose
    ├── ExtractRefused [schema.extracts]         a de-identified extract refused
    ├── SealingWalkError [schema.sealing]        a sealed path outside the answer
    ├── SourceProblem [gateway.config.sources]   a [[sources]] entry; key
    ├── PeerConfigError [connectors.graphql_peer] a peer's files or URL; key
    ├── TransitionRefused [connectors.domain]    a prescription's state change refused
    ├── BenefitsError, RulesError [connectors]   a rules file is wrong
    ├── identity: AuthenticationError, ClaimError, ScopeError, IssuerConfigError,
    │             DemoIssuerError, JwksConfigError, KeysUnavailable
    ├── keys and crypto: KeyRingError, KeyProviderError, DecryptionError, SealingError,
    │             SealingKeyError, PartnerKeyError, ProfessionalKeyError, SM2KeyError,
    │             UsageError [security.crypto.usage] (a key's use counted past its limit)
    ├── audit: AuditWriteError, AuditLogError, AuditKeyError, NoteError, RecordsLogError,
    │             WriterError (WriterGone)
    ├── policy and data: PolicyError, GradeError, SupervisionPolicyError, CatalogueError,
    │             ReasonError, IdentifierError, DocumentError, TransitionError, DPError,
    │             BudgetExhausted, ConsentNotFound, NotYourConsent
    └── (not here: FieldDenied, BreakerOpen, Reasoned (PeerError), SourceDown, OutOfRange and
         NoHead are signals between two modules, caught where they are raised, as are the
         private ones; GraphQL errors are GraphQLError)

A class that was a ``ValueError``, ``LookupError`` or ``PermissionError`` stays one as well.
"""

from __future__ import annotations

__all__ = ["MedfedError"]


class MedfedError(Exception):
    """A medfed error; subclasses set ``code`` and ``status``, and ``key`` when they have one."""

    code: str = "INTERNAL"
    status: int = 500
    key: str | None = None
