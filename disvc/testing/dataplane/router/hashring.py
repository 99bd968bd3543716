"""Consistent hashing over endpoints, as ingress-nginx's ``chash`` balancer uses.

ingress-nginx (``upstream-hash-by``, and cookie affinity in ``balanced``
mode) maps a key onto a ring of points, many per endpoint, so adding or
removing one endpoint moves only the keys next to its points. This ring
places 160 points per endpoint by CRC-32 of the endpoint's address.
"""

from __future__ import annotations

import bisect
import zlib
from collections.abc import Sequence
from functools import lru_cache
from typing import Final

POINTS_PER_ENDPOINT: Final = 160


@lru_cache(maxsize=256)
def _ring(addresses: tuple[str, ...]) -> tuple[tuple[int, ...], tuple[str, ...]]:
    points = sorted(
        (zlib.crc32(f"{address}#{i}".encode()), address)
        for address in addresses
        for i in range(POINTS_PER_ENDPOINT)
    )
    return tuple(p for p, _ in points), tuple(a for _, a in points)


def find(addresses: Sequence[str], key: str | bytes) -> str | None:
    """The address ``key`` hashes to among ``addresses`` (None when empty)."""
    if not addresses:
        return None
    hashes, owners = _ring(tuple(sorted(addresses)))
    data = key.encode() if isinstance(key, str) else key
    index = bisect.bisect_left(hashes, zlib.crc32(data)) % len(hashes)
    return owners[index]
