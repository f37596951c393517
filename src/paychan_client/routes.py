"""URL layout of the three route families (spec 6.2, 6.3, 6.4)."""

from __future__ import annotations

from paychan_common.errors import PaychanError
from paychan_common.state import Family
from paychan_common.tx import OutPoint


class Routes:
    """Builds URLs under one endpoint (scheme://host[:port][/prefix])."""

    def __init__(self, endpoint: str) -> None:
        self.base = endpoint.rstrip("/")

    def funding_info(self, family: Family, client_pubkey: str, exp_time: int) -> tuple[str, list[tuple[str, str]]]:
        """v1: GET /v1/fundingInfo?client_pubkey&exp_time; v2 and v2.3 (rbpcp-api order): /v2/funding/pk/exp/info."""
        if family is Family.V1:
            return f"{self.base}/v1/fundingInfo", [("client_pubkey", client_pubkey), ("exp_time", str(exp_time))]
        return f"{self.base}/v2/funding/{client_pubkey}/{exp_time}/info", []

    def begin_open(self, client_pubkey: str, exp_time: int) -> str:
        """v2-seed: GET /v2/funding/pk/exp/begin_open."""
        return f"{self.base}/v2/funding/{client_pubkey}/{exp_time}/begin_open"

    def open(self, family: Family, client_pubkey: str, exp_time: int, outpoint: OutPoint) -> str:
        """The URL the opening payment is POSTed to."""
        if family is Family.V1:
            return f"{self.base}/v1/channels/new"
        return self.channel(family, client_pubkey, exp_time, outpoint)

    def channel(self, family: Family, client_pubkey: str, exp_time: int, outpoint: OutPoint) -> str:
        """The channel resource that payments are PUT to."""
        txid, vout = outpoint.display_txid, outpoint.vout
        if family is Family.V1:
            return f"{self.base}/v1/channels/{txid}/{vout}"
        if family is Family.V2_SEED:
            return f"{self.base}/v2/channels/{client_pubkey}/{exp_time}/{txid}/{vout}"
        return f"{self.base}/v2/channels/{txid}/{vout}"


def close_url(channel_url: str, family: Family) -> str:
    """v1 closes with DELETE on the channel itself; v2 families PUT to <channel>/close."""
    return channel_url if family is Family.V1 else channel_url.rstrip("/") + "/close"


def outpoint_in_url(url: str) -> OutPoint | None:
    """The outpoint named by the last two path segments of a channel URL, if they are one."""
    path = url.split("?", 1)[0].rstrip("/")
    parts = path.rsplit("/", 2)
    if len(parts) != 3 or not parts[2].isdigit():
        return None
    try:
        return OutPoint.from_display(parts[1].lower(), int(parts[2]))
    except PaychanError:
        return None
