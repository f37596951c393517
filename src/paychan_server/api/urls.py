"""Absolute channel URLs of each route family (spec 6.2 #2, 6.3 #2-3, 6.4 #2): the Location of an open
channel, of an existing one (409), and the begin_open answer."""

from __future__ import annotations

from aiohttp import web

from paychan_common.state import Family
from paychan_common.tx import OutPoint

__all__ = ["channel_url"]


def channel_url(request: web.Request, family: Family, client_pubkey: bytes, exp_time: int,
                outpoint: OutPoint) -> str:
    """The channel's URL in `family`'s layout (v2.3.0: without the secret, which is the client's to add)."""
    base = f"{request.scheme}://{request.host}"
    where = f"{outpoint.display_txid}/{outpoint.vout}"
    if family is Family.V1:
        return f"{base}/v1/channels/{where}"
    if family is Family.V2_SEED:
        return f"{base}/v2/channels/{client_pubkey.hex()}/{exp_time}/{where}"
    return f"{base}/v2/channels/{where}"
