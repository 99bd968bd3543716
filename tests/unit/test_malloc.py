"""The allocator setting made at start-up: applied on glibc, a no-op elsewhere."""

from __future__ import annotations

import platform

import pytest
from pytest_mock import MockerFixture

from disvc.controller import malloc


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_takes_the_fixed_mmap_threshold() -> None:
    assert malloc.map_large_blocks() is True


def test_without_a_c_library_nothing_is_changed(mocker: MockerFixture) -> None:
    mocker.patch("ctypes.util.find_library", return_value=None)
    assert malloc.map_large_blocks() is False


def test_a_c_library_without_mallopt_is_left_alone(mocker: MockerFixture) -> None:
    mocker.patch("ctypes.CDLL", return_value=object())
    assert malloc.map_large_blocks() is False
