"""A seeded pseudo-random permutation of [0, n) for any n, in O(1) memory — the scan order.

Why: probing addresses in order hits one network with a burst; ZMap walks a cyclic group instead. We use a
balanced Feistel network over the smallest even bit width covering ``n`` and *cycle-walk* (re-apply the
permutation until the value falls below ``n``), which gives a true bijection on [0, n) for any n up to
2**128 (whole IPv6 prefixes times ports), keyed by a seed, invertible (so a record's position can be
recovered from its address and port when resuming), with an expected < 2 rounds of walking since
2**k < 4n. It is not cryptographic and need not be: it only has to scatter.

Sharding: shard ``i`` of ``m`` takes positions i, i+m, i+2m, ... of the same order, so the shards together
cover every index exactly once and each shard is itself scattered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

_ROUNDS = 4
_M64 = (1 << 64) - 1


def _mix(x: int) -> int:
    """splitmix64's finaliser: a fast, well-spread 64-bit mixing function."""
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 & _M64
    x = (x ^ (x >> 27)) * 0x94D049BB133111EB & _M64
    return x ^ (x >> 31)


class Permutation:
    """A bijection of [0, size) determined by ``seed``."""

    def __init__(self, size: int, seed: int) -> None:
        if size < 0:
            raise ValueError("size must be >= 0")
        self.size = size
        self.seed = seed
        bits = max(2, (max(size - 1, 1)).bit_length())
        bits += bits % 2
        self._half = bits // 2
        self._mask = (1 << self._half) - 1
        digest = hashlib.sha256(f"cleartext-permutation:{seed}:{size}".encode()).digest()
        self._keys = [int.from_bytes(digest[i * 8 : i * 8 + 8], "big") for i in range(_ROUNDS)]

    def _round(self, value: int, key: int) -> int:
        # Halves wider than 64 bits (huge IPv6 spaces) are mixed in 64-bit pieces.
        out, shift = 0, 0
        while shift < self._half:
            out |= _mix(((value >> shift) & _M64) ^ key ^ shift) << shift
            shift += 64
        return out & self._mask

    def _encrypt(self, x: int) -> int:
        left, right = x >> self._half, x & self._mask
        for key in self._keys:
            left, right = right, left ^ self._round(right, key)
        return (left << self._half) | right

    def _decrypt(self, y: int) -> int:
        left, right = y >> self._half, y & self._mask
        for key in reversed(self._keys):
            left, right = right ^ self._round(left, key), left
        return (left << self._half) | right

    def __getitem__(self, position: int) -> int:
        """The index at ``position`` of the order."""
        if not 0 <= position < self.size:
            raise IndexError(position)
        value = self._encrypt(position)
        while value >= self.size:  # cycle-walk back into [0, size)
            value = self._encrypt(value)
        return value

    def position(self, index: int) -> int:
        """The inverse: where ``index`` stands in the order."""
        if not 0 <= index < self.size:
            raise IndexError(index)
        value = self._decrypt(index)
        while value >= self.size:
            value = self._decrypt(value)
        return value

    def positions(self, shard: int = 0, shards: int = 1, start: int = 0) -> Iterator[tuple[int, int]]:
        """(position, index) pairs of one shard, from ``start`` (a position) on, lazily."""
        first = start + (shard - start) % shards
        for position in range(first, self.size, shards):
            yield position, self[position]
