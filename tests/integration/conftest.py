"""Integration-tier fixtures: the real regtest node of the functional tier."""

from tests.functional.regtest_node import regtest_node  # noqa: F401
