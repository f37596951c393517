"""The test suite's one plugin: every tier's fixtures come from tests/support/plugin.py."""

pytest_plugins = ["tests.support.plugin"]
