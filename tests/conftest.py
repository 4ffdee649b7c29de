"""Suite-wide settings.

* ``--run-slow`` runs the ``slow`` variants (skipped otherwise).
* Hypothesis runs derandomized, without its example database and without per-example
  deadlines, so the suite is deterministic and a loaded host cannot fail it on timing.
  ``HYPOTHESIS_PROFILE=explore`` searches with fresh random seeds and up to 1000 examples.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

settings.register_profile("chanrouter", derandomize=True, database=None, deadline=None)
settings.register_profile("explore", deadline=None, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "chanrouter"))


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--run-slow``."""
    parser.addoption(
        "--run-slow",
        action="store_true",
        default=False,
        help="also run tests marked slow (the long variants of the reliability tests)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``slow`` tests unless ``--run-slow`` is given or ``-m`` names ``slow``."""
    # `-m slow` is what the marker's description tells people to use: honour it too.
    if config.getoption("--run-slow") or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow variant: run with --run-slow (or -m slow)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
