"""Shared test fixtures: the anyio backend and where the recorded real Graph API replies live."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Timing claims live in benchmarks/, never in tests: hypothesis' deadline and its "input generation
# is slow" health check are timed assertions, and a busy or slow machine fails them (one draw of a
# recursive strategy took 1.4 s in a fresh virtualenv). Loaded here, before any test module's
# `@settings` is built on it.
settings.register_profile("harvester", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("harvester")

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


@pytest.fixture(autouse=True)
def _harvester_logger_restored() -> Iterator[None]:
    """A CLI test that runs `main()` in-process points the "harvester" logger at its captured
    stderr and stops it propagating: later tests would log to a closed file and their `caplog`
    would see nothing. Each test gets the logger back as it found it."""
    logger = logging.getLogger("harvester")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]
