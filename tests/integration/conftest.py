"""Fixtures for tests that drive the real tool against real servers (helpers: toolrun.py)."""

from __future__ import annotations

from typing import Any

import pytest
from toolrun import Result, run_tool


@pytest.fixture
def tool(database):
    """tool("run", "--target-version", "v0.22.0") runs the CLI against the test's database."""

    def call(*args: str, **kw: Any) -> Result:
        return run_tool(database.env, *args, **kw)

    return call


