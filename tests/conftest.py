"""Shared test fixtures: the anyio backend and where the recorded real Graph API replies live."""

from __future__ import annotations

from pathlib import Path

import pytest

# CI and sessions lay `shared/` beside the checkout; the fixtures are read in place, never copied.
SHARED_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def shared_fixtures() -> Path:
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(
            f"recorded Graph API replies not found at {SHARED_FIXTURES} (../shared is absent)"
        )
    return SHARED_FIXTURES
