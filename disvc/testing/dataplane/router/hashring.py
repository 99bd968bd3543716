"""Consistent hashing over endpoints, as ingress-nginx's ``chash`` balancer uses.

ingress-nginx (``upstream-hash-by``, and cookie affinity in ``balanced``
mode) maps a key onto a ring of points, many per endpoint, so adding or
removing one endpoint moves only the keys next to its points. As
lua-resty-chash (nginx's own ``hash ... consistent``) does, an endpoint's
160 points form a chain: each is the CRC-32 of the endpoint's name followed
by the previous point (little-endian, the first after 0). Points made
straight from ``name#i`` would be wrong: CRC-32 is affine, so two names of
the same length (two pods' addresses) would get the same points shifted by
one constant, and one endpoint could own nearly the whole ring.
"""

from __future__ import annotations

import bisect
import zlib
from collections.abc import Sequence
from functools import lru_cache
from typing import Final

POINTS_PER_ENDPOINT: Final = 160


def _points(name: str) -> list[int]:
    base = name.encode()
    points, previous = [], 0
    for _ in range(POINTS_PER_ENDPOINT):
        previous = zlib.crc32(base + previous.to_bytes(4, "little"))
        points.append(previous)
    return points


@lru_cache(maxsize=256)
def _ring(addresses: tuple[str, ...]) -> tuple[tuple[int, ...], tuple[str, ...]]:
    points = sorted((point, address) for address in addresses for point in _points(address))
    return tuple(p for p, _ in points), tuple(a for _, a in points)


def find(addresses: Sequence[str], key: str | bytes) -> str | None:
    """The address ``key`` hashes to among ``addresses`` (None when empty)."""
    if not addresses:
        return None
    hashes, owners = _ring(tuple(sorted(addresses)))
    data = key.encode() if isinstance(key, str) else key
    index = bisect.bisect_left(hashes, zlib.crc32(data)) % len(hashes)
    return owners[index]
