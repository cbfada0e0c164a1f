"""The scan order: a seeded bijection, invertible, and shards that cover everything exactly once."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from cleartext.scan.permutation import Permutation


@settings(max_examples=60, deadline=None)
@given(size=st.integers(min_value=0, max_value=3000), seed=st.integers(min_value=0, max_value=2**64))
def test_is_a_bijection_and_invertible(size: int, seed: int) -> None:
    perm = Permutation(size, seed)
    order = [perm[p] for p in range(size)]
    assert sorted(order) == list(range(size))
    assert all(perm.position(index) == p for p, index in enumerate(order))


@settings(max_examples=40, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=2000),
    shards=st.integers(min_value=1, max_value=9),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_shards_cover_every_index_exactly_once(size: int, shards: int, seed: int) -> None:
    perm = Permutation(size, seed)
    seen: list[int] = []
    for shard in range(shards):
        seen += [index for _, index in perm.positions(shard, shards)]
    assert sorted(seen) == list(range(size))


def test_resume_from_a_position_continues_the_same_shard() -> None:
    perm = Permutation(1000, 7)
    full = list(perm.positions(2, 5))
    later = list(perm.positions(2, 5, start=503))
    assert later == [pair for pair in full if pair[0] >= 503]


def test_seed_changes_the_order_and_order_scatters() -> None:
    a = [Permutation(65536, 1)[p] for p in range(256)]
    b = [Permutation(65536, 2)[p] for p in range(256)]
    assert a != b
    # Consecutive positions land far apart: no run of neighbours (no burst on one network).
    close = sum(1 for x, y in itertools.pairwise(a) if abs(x - y) < 256)
    assert close < 10


def test_huge_spaces_work() -> None:
    size = 2**64 * 7  # a whole IPv6 /64 on seven ports
    perm = Permutation(size, 42)
    for position in (0, 1, size // 3, size - 1):
        index = perm[position]
        assert 0 <= index < size
        assert perm.position(index) == position
