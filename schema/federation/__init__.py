"""Apollo Federation 2 subgraphs of the merged schema: records, results, settlement.

Each subgraph is cut from the merged API's own types (no copies of their resolvers): see
:mod:`schema.federation.subgraphs`. Entity resolution (``_entities``) goes through each entity's
``resolve_reference``, which builds objects through the same projections and relations as the
ordinary entry points, so field authorization holds when a router is bypassed.
"""

from schema.federation.subgraphs import SUBGRAPHS, build_subgraph

__all__ = ["SUBGRAPHS", "build_subgraph"]
