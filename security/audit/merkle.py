"""RFC 6962 / RFC 9162 Merkle trees: hashes, proofs, and their verification.

Proof *generation* is written against ranges of leaves rather than a leaf list, so the same
code serves an in-memory list (tests, small tools) and the database, where every range a
proof needs is a handful of stored complete subtrees (see :func:`aligned_subtrees`).

Proof *verification* needs nothing but hashes and sizes, so an outside party can check the
log without trusting it; it follows RFC 9162 sections 2.1.3.2 and 2.1.4.2 step by step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
MAX_TREE_SIZE = 2**64 - 1  # tree sizes and indexes are uint64 (RFC 6962, C2SP tlog)
EMPTY_ROOT = hashlib.sha256(b"").digest()

RangeHash = Callable[[int, int], bytes]  # MTH of leaves [start, end)


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1): where MTH splits a range."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes, for any size (the empty tree's root is SHA-256 of nothing)."""
    frontier = Frontier()
    for h in hashes:
        frontier.append(h)
    return frontier.root()


class Frontier:
    """The right edge of a growing tree: one complete subtree hash per set bit of the size.

    Appending is O(1) amortised and memory is O(log n), which is what lets ``verify`` stream
    a million events and lets the log extend its stored tree without reading it back.
    """

    __slots__ = ("_stack", "size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        levels = [bit for bit in range(size.bit_length() - 1, -1, -1) if size >> bit & 1]
        if len(levels) != len(hashes):
            raise ValueError(
                f"a tree of size {size} has {len(levels)} frontier hashes, not {len(hashes)}"
            )
        self.size = size
        self._stack: list[tuple[int, bytes]] = list(zip(levels, hashes, strict=True))

    def append(self, leaf: bytes, on_node: Callable[[int, int, bytes], None] | None = None) -> None:
        """Add a leaf hash; ``on_node(level, index, hash)`` sees every subtree it completes."""
        level, h, index = 0, leaf, self.size
        stack = self._stack
        while stack and stack[-1][0] == level:
            _, left = stack.pop()
            h = node_hash(left, h)
            level += 1
            index >>= 1
            if on_node is not None:
                on_node(level, index, h)
        stack.append((level, h))
        self.size += 1

    def hashes(self) -> list[bytes]:
        return [h for _, h in self._stack]

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        stack = self._stack
        h = stack[-1][1]
        for _, left in reversed(stack[:-1]):
            h = node_hash(left, h)
        return h


def aligned_subtrees(start: int, end: int) -> list[tuple[int, int]]:
    """The complete subtrees ``(level, index)`` whose concatenation is leaves [start, end).

    Valid for every range the RFC's recursions produce: their start is a multiple of a power
    of two at least as large as the range, so the greedy split is MTH's own split.
    """
    out: list[tuple[int, int]] = []
    while start < end:
        level = (start & -start).bit_length() - 1 if start else (end - start).bit_length() - 1
        while start + (1 << level) > end:
            level -= 1
        out.append((level, start >> level))
        start += 1 << level
    return out


def fold_subtrees(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from its :func:`aligned_subtrees` hashes (largest first)."""
    h = hashes[-1]
    for left in reversed(hashes[:-1]):
        h = node_hash(left, h)
    return h


# --- proof generation (RFC 6962 section 2.1.1 and 2.1.2) --------------------------------


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose MTHs form PATH(index, D[size]), leaf-level sibling first."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} is not in a tree of size {size}")
    out: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start += k
    out.reverse()
    return out


def consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """The leaf ranges whose MTHs form PROOF(old, D[new]) = SUBPROOF(old, D[new], true)."""
    if not 0 <= old <= new:
        raise ValueError(f"no consistency proof from size {old} to size {new}")
    if old in (0, new):
        return []
    out: list[tuple[int, int]] = []
    start, end, m, complete = 0, new, old, True
    while True:
        n = end - start
        if m == n:
            if not complete:
                out.append((start, end))
            break
        k = _split(n)
        if m <= k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start += k
            m -= k
            complete = False
    out.reverse()
    return out


def inclusion_proof(index: int, size: int, range_hash: RangeHash) -> list[bytes]:
    return [range_hash(s, e) for s, e in inclusion_ranges(index, size)]


def consistency_proof(old: int, new: int, range_hash: RangeHash) -> list[bytes]:
    return [range_hash(s, e) for s, e in consistency_ranges(old, new)]


def list_range_hash(leaf_hashes: Sequence[bytes]) -> RangeHash:
    """A :data:`RangeHash` over an in-memory list of leaf hashes."""

    def mth(start: int, end: int) -> bytes:
        return root_from_leaf_hashes(leaf_hashes[start:end])

    return mth


# --- proof verification (RFC 9162 section 2.1.3.2 and 2.1.4.2) --------------------------


def root_from_inclusion_proof(
    index: int, size: int, leaf: bytes, proof: Iterable[bytes]
) -> bytes | None:
    """The root that ``proof`` implies for ``leaf`` at ``index``, or ``None`` if malformed
    (sizes are uint64, as RFC 6962 and C2SP checkpoints say: nothing above 2^64 - 1)."""
    if not 0 <= index < size <= MAX_TREE_SIZE:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if len(p) != HASH_SIZE or sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """True only if ``proof`` shows the leaf hash at ``index`` in the tree ``(size, root)``."""
    computed = root_from_inclusion_proof(index, size, leaf, proof)
    return computed is not None and computed == root


def verify_consistency(
    old_size: int, old_root: bytes, new_size: int, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """True only if the tree ``(new_size, new_root)`` extends ``(old_size, old_root)``."""
    if not 0 <= old_size <= new_size <= MAX_TREE_SIZE or any(len(p) != HASH_SIZE for p in proof):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        # Every tree extends the empty one; there is nothing to prove.
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
