"""Fixtures of the chart tests: the RAGFlow stand-in chart with the documented patch applied."""

from __future__ import annotations

from pathlib import Path

import pytest
from helmtools import build_ragflow_chart


@pytest.fixture(scope="session")
def ragflow_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_ragflow_chart(tmp_path_factory.mktemp("ragflow-chart"))
