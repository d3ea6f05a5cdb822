"""The HA suite must run isolated from the agent's pytest configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from custom_components.dlms_edge import config_flow

HA_TESTS = Path(__file__).parent.resolve()


def test_only_own_conftest_loaded(request: pytest.FixtureRequest) -> None:
    conftests = {
        Path(plugin.__file__).resolve()
        for plugin in request.config.pluginmanager.get_plugins()
        if Path(getattr(plugin, "__file__", "") or "x").name == "conftest.py"
    }
    assert conftests == {HA_TESTS / "conftest.py"}


def test_integration_imported_from_this_repository() -> None:
    assert Path(config_flow.__file__).resolve().parent == (
        HA_TESTS.parent.parent / "custom_components" / "dlms_edge"
    )
