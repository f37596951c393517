"""paychan_client: an RBPCP client library and CLI over httpx (v1, v2-seed and v2.3.0 routes)."""

from .api import ChannelUpdate, PaychanClient
from .draft import ChannelDraft, load_any
from .errors import (
    AddressMismatch,
    BadResponse,
    ChannelStateError,
    ClientError,
    InvalidArgument,
    ServerRejected,
    StateFileError,
    TransportError,
)
from .models import FAMILIES, Family, FundingInfo, PaymentResult, parse_family
from .refund import RefundValidity, SettlementConfirmed, build_refund_tx
from .rpc import NodeClient
from .state import ClientChannel

__all__ = [
    "FAMILIES",
    "AddressMismatch",
    "BadResponse",
    "ChannelDraft",
    "ChannelStateError",
    "ChannelUpdate",
    "ClientChannel",
    "ClientError",
    "Family",
    "FundingInfo",
    "InvalidArgument",
    "NodeClient",
    "PaychanClient",
    "PaymentResult",
    "RefundValidity",
    "ServerRejected",
    "SettlementConfirmed",
    "StateFileError",
    "TransportError",
    "build_refund_tx",
    "load_any",
    "parse_family",
]
