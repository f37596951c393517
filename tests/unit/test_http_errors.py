"""The HTTP edge's status table (spec 7.5): by the class's stable code, up the class tree; an edge's
override applies to the code it names only."""

from __future__ import annotations

from paychan_common.errors import ChannelGone, InvalidInput, PaychanError
from paychan_runtime.bitcoin_rpc import RpcError
from paychan_runtime.config import ConfigError
from paychan_runtime.http_errors import STATUS_BY_CODE, http_status


def test_subclasses_with_their_own_code_inherit_the_status() -> None:
    assert http_status(ConfigError("bad file")) == 400
    assert http_status(RpcError(-26, "non-final")) == 502
    assert http_status(PaychanError("x")) == 500


def test_overrides_name_a_code() -> None:
    v1 = {"channel_closed": 404}
    assert http_status(ChannelGone("closed"), v1) == 404
    assert http_status(ChannelGone("closing", code="channel_closing"), v1) == 410
    assert http_status(InvalidInput("x", code="channel_closed")) == 400  # a finer code alone changes nothing


def test_the_table_is_only_statuses() -> None:
    assert all(isinstance(code, str) and 400 <= status < 600 for code, status in STATUS_BY_CODE.items())
