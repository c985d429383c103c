"""Bounded polling for tests: wait for a condition, never sleep a fixed time to prove it."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> float:
    """Poll `condition` until true; return the seconds it took, fail naming `what`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.05)
    pytest.fail(f"{what}: not within {timeout} s")
