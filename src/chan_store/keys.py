"""ChanStore's key layout in the ordered key/value storage.

    c ‖ outpoint(36)                                  -> ChannelState.serialize()
    k ‖ client_pubkey(33) ‖ outpoint(36)              -> b""   (index by client key)
    s ‖ status(1) ‖ exp_time(4, big-endian) ‖ outpoint(36) -> b""   (index by status, then expiry)

`outpoint` is `OutPoint.serialize()` (txid in internal order ‖ vout LE). Every write of a state puts its
`c` key and brings the two index keys up to date in the same batch (see `index_keys`).
"""

from __future__ import annotations

import struct

from paychan_common.state import Status

__all__ = [
    "CHANNEL",
    "CLIENT",
    "OUTPOINT_LEN",
    "PUBKEY_LEN",
    "STATUS",
    "channel_key",
    "client_key",
    "client_prefix",
    "index_keys",
    "key_after",
    "outpoint_of_index_key",
    "raw_client_pubkey",
    "raw_exp_time",
    "raw_index_fields",
    "raw_index_key_ok",
    "raw_index_keys",
    "raw_outpoint",
    "raw_status",
    "same_status",
    "status_key",
    "status_prefix",
]

CHANNEL = b"c"
CLIENT = b"k"
STATUS = b"s"
_STATUS_VALUES = frozenset(status.value for status in Status)
OUTPOINT_LEN = 36
PUBKEY_LEN = 33

# Offsets into ChannelState.serialize() (format 1): a fixed head "<BBB33sIQQQBIqq" (version, family,
# status, client key, exp_time, ...; 85 bytes), then the outpoint. Tests check them against parse().
_FORMAT_VERSION = 1
_STATUS_AT = 2
_PUBKEY_AT = 3
_EXP = struct.Struct("<I")
_EXP_AT = _PUBKEY_AT + PUBKEY_LEN
_OUTPOINT_AT = 85


def channel_key(outpoint: bytes) -> bytes:
    """Key of a channel's state."""
    return CHANNEL + outpoint


def client_prefix(client_pubkey: bytes) -> bytes:
    """Prefix of the client-key index entries of one client key."""
    return CLIENT + client_pubkey


def client_key(client_pubkey: bytes, outpoint: bytes) -> bytes:
    """Client-key index entry of one channel."""
    return CLIENT + client_pubkey + outpoint


def status_prefix(status: Status) -> bytes:
    """Prefix of the status index entries of one status."""
    return STATUS + bytes([status.value])


def status_key(status: Status, exp_time: int, outpoint: bytes) -> bytes:
    """Status/expiry index entry of one channel."""
    return STATUS + bytes([status.value]) + exp_time.to_bytes(4, "big") + outpoint


def outpoint_of_index_key(key: bytes) -> bytes:
    """The outpoint at the end of any index key."""
    return key[-OUTPOINT_LEN:]


def key_after(key: bytes) -> bytes:
    """The smallest key greater than `key` (an exclusive scan start)."""
    return key + b"\x00"


def raw_status(serialized: bytes) -> Status:
    """Status of a serialized ChannelState, without parsing the whole value."""
    return Status(serialized[_STATUS_AT])


def same_status(serialized: bytes, other: bytes) -> bool:
    """True if two serialized ChannelStates have the same status (one byte compared)."""
    return serialized[_STATUS_AT] == other[_STATUS_AT]


def raw_index_fields(serialized: bytes) -> bytes:
    """The bytes of a serialized ChannelState that its index entries derive from (status, client key,
    exp_time: contiguous in the head); equal bytes, equal index entries."""
    return serialized[_STATUS_AT : _EXP_AT + _EXP.size]


def raw_client_pubkey(serialized: bytes) -> bytes:
    """Client key of a serialized ChannelState, without parsing the whole value."""
    return serialized[_PUBKEY_AT : _PUBKEY_AT + PUBKEY_LEN]


def raw_exp_time(serialized: bytes) -> int:
    """exp_time of a serialized ChannelState, without parsing the whole value."""
    exp: int = _EXP.unpack_from(serialized, _EXP_AT)[0]
    return exp


def raw_outpoint(serialized: bytes) -> bytes:
    """Outpoint of a serialized ChannelState, without parsing the whole value."""
    return serialized[_OUTPOINT_AT : _OUTPOINT_AT + OUTPOINT_LEN]


def raw_index_key_ok(key: bytes, outpoint: bytes, serialized: bytes) -> bool:
    """Cheap start-up check that a stored state (format 1) is the one its status index entry names."""
    return (len(serialized) >= _OUTPOINT_AT + OUTPOINT_LEN and serialized[0] == _FORMAT_VERSION
            and serialized[_STATUS_AT] in _STATUS_VALUES and key[1] == serialized[_STATUS_AT]
            and key[2:6] == serialized[_EXP_AT : _EXP_AT + 4][::-1]  # exp_time: BE in keys, LE in states
            and serialized[_OUTPOINT_AT : _OUTPOINT_AT + OUTPOINT_LEN] == outpoint == key[6:])


def index_keys(outpoint: bytes, serialized: bytes) -> tuple[bytes, bytes]:
    """The (client-key, status/expiry) index entries of a serialized state stored at `outpoint`."""
    return (
        client_key(raw_client_pubkey(serialized), outpoint),
        status_key(raw_status(serialized), raw_exp_time(serialized), outpoint),
    )


def raw_index_keys(outpoint: bytes, serialized: bytes) -> tuple[bytes, bytes] | None:
    """`index_keys` of a stored state without parsing it (the start-up check's fast path), or None when the
    record is not a format-1 state of a known status stored under its own outpoint."""
    if (len(serialized) < _OUTPOINT_AT + OUTPOINT_LEN or serialized[0] != _FORMAT_VERSION
            or serialized[_STATUS_AT] not in _STATUS_VALUES
            or serialized[_OUTPOINT_AT : _OUTPOINT_AT + OUTPOINT_LEN] != outpoint):
        return None
    return (CLIENT + serialized[_PUBKEY_AT : _PUBKEY_AT + PUBKEY_LEN] + outpoint,
            STATUS + serialized[_STATUS_AT : _STATUS_AT + 1] + serialized[_EXP_AT + 3 : _EXP_AT - 1 : -1] + outpoint)
