from tests.functional.regtest_node import regtest_node, regtest_node_fresh  # noqa: F401
