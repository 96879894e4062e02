"""A source that is another medfed gateway (another province), read over HTTP(S)."""

from connectors.graphql_peer.client import PeerClient, PeerError
from connectors.graphql_peer.spec import PeerSpec, parse_peer

__all__ = ["PeerClient", "PeerError", "PeerSpec", "parse_peer"]
