"""Exponential backoff: the nominal delay, capped, and its jittered draw."""

from __future__ import annotations

import random

from disvc.controller.backoff import Backoff, exponential


def test_the_nominal_delay_doubles_up_to_the_cap_even_past_float_range() -> None:
    assert [exponential(n, 0.005, 1000.0) for n in range(3)] == [0.005, 0.01, 0.02]
    assert exponential(30, 0.005, 1000.0) == 1000.0
    assert exponential(10_000, 0.005, 1000.0) == 1000.0


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap_and_resets() -> None:
    b = Backoff(initial=1.0, cap=8.0, rng=random.Random(7))
    delays = [b.next() for _ in range(6)]
    nominal = [1, 2, 4, 8, 8, 8]
    assert all(n / 2 <= d <= n for d, n in zip(delays, nominal, strict=True))
    b.reset()
    assert 0.5 <= b.next() <= 1.0
