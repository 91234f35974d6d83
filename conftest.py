"""Repository-wide pytest settings: a test marked `long` (minutes on its own, outside the default
run's 25-minute budget) runs only with `--long` (`make test-long`), and is deselected, not
skipped, otherwise: the default run's count says what it covers."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true", help="also run the tests marked `long` (make test-long)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--long"):
        return
    long_ = [i for i in items if i.get_closest_marker("long") is not None]
    if long_:
        config.hook.pytest_deselected(items=long_)
        items[:] = [i for i in items if i.get_closest_marker("long") is None]
