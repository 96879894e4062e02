"""RFC 6962 / 9162 Merkle trees: the Certificate Transparency reference vectors, and proofs
for every pair of sizes that verify, and fail once any hash or size is wrong."""

from __future__ import annotations

import hashlib

import pytest

from security.audit import merkle

LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# From the Certificate Transparency reference tests (first 8 hex digits of each hash).
INCLUSION = {
    (0, 8): ["96a296d2", "5f083f0a", "6b47aaf2"],
    (5, 8): ["bc1a0643", "ca854ea1", "d37ee418"],
    (2, 3): ["fac54203"],
    (1, 5): ["6e340b9c", "5f083f0a", "bc1a0643"],
}
CONSISTENCY = {
    (1, 8): ["96a296d2", "5f083f0a", "6b47aaf2"],
    (6, 8): ["0ebc5d34", "ca854ea1", "d37ee418"],
    (2, 5): ["5f083f0a", "bc1a0643"],
}


def _mth(data: list[bytes]) -> bytes:
    """MTH exactly as RFC 6962 section 2.1 defines it, recursively, as the reference."""
    if not data:
        return hashlib.sha256(b"").digest()
    if len(data) == 1:
        return merkle.leaf_hash(data[0])
    k = 1
    while k * 2 < len(data):
        k *= 2
    return merkle.node_hash(_mth(data[:k]), _mth(data[k:]))


def _hashes(n: int) -> list[bytes]:
    return [merkle.leaf_hash(b"leaf %d" % i) for i in range(n)]


def _flipped(proof: list[bytes], i: int) -> list[bytes]:
    bad = list(proof)
    bad[i] = bytes([bad[i][0] ^ 1]) + bad[i][1:]
    return bad


def test_empty_tree_root_is_hash_of_nothing() -> None:
    assert merkle.root_from_leaf_hashes([]).hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


@pytest.mark.parametrize("size", range(1, 9))
def test_reference_roots(size: int) -> None:
    hashes = [merkle.leaf_hash(leaf) for leaf in LEAVES[:size]]
    assert merkle.root_from_leaf_hashes(hashes).hex() == ROOTS[size - 1]


def test_reference_proofs() -> None:
    lookup = merkle.list_range_hash([merkle.leaf_hash(leaf) for leaf in LEAVES])
    for (index, size), expected in INCLUSION.items():
        assert [h.hex()[:8] for h in merkle.inclusion_proof(index, size, lookup)] == expected
    for (old, new), expected in CONSISTENCY.items():
        assert [h.hex()[:8] for h in merkle.consistency_proof(old, new, lookup)] == expected


def test_frontier_matches_the_recursive_definition_for_every_size() -> None:
    data = [b"event %d" % i for i in range(70)]
    frontier = merkle.Frontier()
    for n, item in enumerate(data, start=1):
        frontier.append(merkle.leaf_hash(item))
        assert frontier.root() == _mth(data[:n])
        rebuilt = merkle.Frontier(frontier.size, frontier.hashes())
        assert rebuilt.root() == frontier.root()


@pytest.mark.parametrize("size", range(1, 21))
def test_inclusion_proofs_verify_and_fail_when_altered(size: int) -> None:
    hashes = _hashes(size)
    root = merkle.root_from_leaf_hashes(hashes)
    lookup = merkle.list_range_hash(hashes)
    for index in range(size):
        proof = merkle.inclusion_proof(index, size, lookup)
        assert merkle.verify_inclusion(index, size, hashes[index], proof, root)
        for i in range(len(proof)):
            assert not merkle.verify_inclusion(index, size, hashes[index], _flipped(proof, i), root)
        assert not merkle.verify_inclusion(index, size, merkle.leaf_hash(b"forged"), proof, root)
        if size > 1:
            other = (index + 1) % size
            assert not merkle.verify_inclusion(other, size, hashes[index], proof, root)
        assert not merkle.verify_inclusion(index, size, hashes[index], [*proof, root], root)


@pytest.mark.parametrize("new", range(1, 21))
def test_consistency_proofs_verify_and_fail_when_altered(new: int) -> None:
    hashes = _hashes(new)
    lookup = merkle.list_range_hash(hashes)
    new_root = merkle.root_from_leaf_hashes(hashes)
    for old in range(0, new + 1):
        old_root = merkle.root_from_leaf_hashes(hashes[:old])
        proof = merkle.consistency_proof(old, new, lookup)
        assert merkle.verify_consistency(old, old_root, new, new_root, proof), (old, new)
        for i in range(len(proof)):
            assert not merkle.verify_consistency(old, old_root, new, new_root, _flipped(proof, i))
        if 0 < old < new:
            forged_old = merkle.root_from_leaf_hashes([merkle.leaf_hash(b"x"), *hashes[1:old]])
            assert not merkle.verify_consistency(old, forged_old, new, new_root, proof)
            assert not merkle.verify_consistency(
                old, old_root, new, _flipped([new_root], 0)[0], proof
            )
            assert not merkle.verify_consistency(old, old_root, new, new_root, [])


def test_a_fork_is_not_consistent() -> None:
    """Two trees that share a prefix but differ before the old size never verify."""
    honest = _hashes(12)
    forked = [*honest[:4], merkle.leaf_hash(b"rewritten"), *honest[5:]]
    proof = merkle.consistency_proof(7, 12, merkle.list_range_hash(forked))
    assert not merkle.verify_consistency(
        7, merkle.root_from_leaf_hashes(honest[:7]), 12, merkle.root_from_leaf_hashes(forked), proof
    )


def test_proofs_for_sizes_beyond_uint64_are_refused():
    """A size of 2^64 or more is not a tree size (RFC 6962's uint64): nothing verifies."""
    leaf = merkle.leaf_hash(b"x")
    big = 2**64
    # An index at the top of a uint64 tree still gets as far as the proof check...
    path = [merkle.leaf_hash(b"%d" % i) for i in range(64)]
    assert merkle.root_from_inclusion_proof(2**64 - 2, 2**64 - 1, leaf, path[:63]) is not None
    # ...one past it is refused outright (a well-shaped 64-hash path for a 2^64 tree).
    assert merkle.root_from_inclusion_proof(2**64 - 1, big, leaf, path) is None
    assert not merkle.verify_inclusion(0, big, leaf, path, merkle.EMPTY_ROOT)
    assert not merkle.verify_consistency(1, leaf, big, leaf, [leaf])
    assert not merkle.verify_consistency(big, leaf, big, leaf, [])
    assert merkle.verify_consistency(2**64 - 1, leaf, 2**64 - 1, leaf, [])  # boundary holds


def test_every_completed_subtree_is_reported_with_its_level_and_index():
    """The log stores the subtrees ``append`` reports and answers proofs from them alone: each
    must be the MTH of exactly the leaves its (level, index) names, and none may be missed."""
    hashes = _hashes(70)
    seen: dict[tuple[int, int], bytes] = {}
    frontier = merkle.Frontier()
    for n, h in enumerate(hashes, start=1):
        frontier.append(h, lambda level, index, node: seen.__setitem__((level, index), node))
        # After n leaves, every complete subtree of 2^level leaves inside [0, n) is known.
        expected = {(lv, i) for lv in range(1, 7) for i in range(n >> lv)}
        assert set(seen) == expected, n
    for (level, index), node in seen.items():
        start = index << level
        assert node == merkle.root_from_leaf_hashes(hashes[start : start + (1 << level)])


def _proof_ranges(size: int):
    for index in range(size):
        yield from merkle.inclusion_ranges(index, size)
    for old in range(size + 1):
        yield from merkle.consistency_ranges(old, size)


@pytest.mark.parametrize("size", range(1, 41))
def test_each_proof_range_is_its_aligned_subtrees_folded(size: int) -> None:
    """What the database answers a proof from: a range the RFC's recursions ask for is the
    concatenation of stored complete subtrees, largest first, and folding them gives its MTH."""
    hashes = _hashes(size)
    for start, end in set(_proof_ranges(size)) | {(0, size)}:
        plan = merkle.aligned_subtrees(start, end)
        covered, at = [], start
        for level, index in plan:
            assert index << level == at, (start, end, plan)  # contiguous, in order, aligned
            covered.append(merkle.root_from_leaf_hashes(hashes[at : at + (1 << level)]))
            at += 1 << level
        assert at == end, (start, end, plan)
        assert [lv for lv, _ in plan] == sorted((lv for lv, _ in plan), reverse=True)
        assert merkle.fold_subtrees(covered) == merkle.root_from_leaf_hashes(hashes[start:end])
    assert merkle.aligned_subtrees(5, 5) == []


def test_sizes_and_indexes_outside_the_tree_are_refused():
    """An index equal to the size, or a negative size, never verifies, even with hashes that
    would fold to the right root."""
    h0, h1 = _hashes(2)
    root = merkle.node_hash(h0, h1)
    assert merkle.verify_inclusion(0, 2, h0, [h1], root)  # the control: inside the tree
    assert merkle.verify_inclusion(1, 2, h1, [h0], root)
    assert merkle.root_from_inclusion_proof(2, 2, h0, [h1]) is None
    assert not merkle.verify_inclusion(2, 2, h0, [h1], root)
    assert not merkle.verify_inclusion(-1, 2, h0, [h1], root)
    assert merkle.verify_consistency(1, h0, 2, root, [h1])  # the control
    assert not merkle.verify_consistency(-1, h0, 2, root, [h0, h1])
    assert not merkle.verify_consistency(3, root, 2, root, [h1])


def test_equal_sizes_and_the_empty_tree_need_no_proof_and_accept_none():
    """A tree is consistent with itself only (same size, same root, no proof), and every tree
    extends the empty one (whose root is SHA-256 of nothing) with no proof."""
    hashes = _hashes(5)
    root = merkle.root_from_leaf_hashes(hashes)
    other = merkle.root_from_leaf_hashes([*hashes[:4], merkle.leaf_hash(b"rewritten")])
    assert merkle.verify_consistency(5, root, 5, root, [])
    assert not merkle.verify_consistency(5, root, 5, other, [])  # a rewrite at the same size
    assert not merkle.verify_consistency(5, root, 5, root, [hashes[0]])  # no proof is due
    assert merkle.verify_consistency(0, merkle.EMPTY_ROOT, 5, root, [])
    assert not merkle.verify_consistency(0, root, 5, root, [])  # size 0 has one root only
    assert not merkle.verify_consistency(0, merkle.EMPTY_ROOT, 5, root, [hashes[0]])


def test_a_malformed_inclusion_proof_implies_no_root():
    """``root_from_inclusion_proof`` answers None, not some root, for a hash of the wrong
    length or a hash too many (what a caller comparing roots itself relies on)."""
    hashes = _hashes(4)
    proof = merkle.inclusion_proof(1, 4, merkle.list_range_hash(hashes))
    root = merkle.root_from_leaf_hashes(hashes)
    assert merkle.root_from_inclusion_proof(1, 4, hashes[1], proof) == root  # the control
    assert merkle.root_from_inclusion_proof(1, 4, hashes[1], [proof[0][:-1], proof[1]]) is None
    assert merkle.root_from_inclusion_proof(1, 4, hashes[1], [proof[0], proof[1] + b"x"]) is None
    assert merkle.root_from_inclusion_proof(1, 4, hashes[1], [*proof, hashes[0]]) is None
    assert merkle.root_from_inclusion_proof(1, 4, hashes[1], proof[:1]) is None  # one short


def test_proof_ranges_are_refused_outside_the_tree():
    with pytest.raises(ValueError, match="not in a tree of size 4"):
        merkle.inclusion_ranges(-1, 4)
    with pytest.raises(ValueError, match="not in a tree of size 4"):
        merkle.inclusion_ranges(4, 4)
    assert len(merkle.inclusion_ranges(3, 4)) == 2  # the control: the last leaf
    with pytest.raises(ValueError, match="no consistency proof"):
        merkle.consistency_ranges(-1, 4)
    with pytest.raises(ValueError, match="no consistency proof"):
        merkle.consistency_ranges(5, 4)
    assert merkle.consistency_ranges(0, 4) == []  # the control: from the empty tree
    h0, h1 = _hashes(2)
    assert merkle.root_from_inclusion_proof(-1, 2, h0, [h1]) is None


@pytest.mark.parametrize("new", [2, 3, 5, 8])
def test_a_consistency_proof_with_a_hash_too_many_fails(new: int) -> None:
    hashes = _hashes(new)
    lookup = merkle.list_range_hash(hashes)
    new_root = merkle.root_from_leaf_hashes(hashes)
    for old in range(1, new):
        old_root = merkle.root_from_leaf_hashes(hashes[:old])
        proof = merkle.consistency_proof(old, new, lookup)
        assert merkle.verify_consistency(old, old_root, new, new_root, proof)  # the control
        for extra in (hashes[0], new_root, old_root):
            assert not merkle.verify_consistency(old, old_root, new, new_root, [*proof, extra])
