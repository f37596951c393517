"""Script numbers, pushes and the channel redeem script (spec 3)."""

from __future__ import annotations

from .errors import InvalidInput

OP_0 = 0x00
OP_PUSHDATA1 = 0x4C
OP_PUSHDATA2 = 0x4D
OP_1 = 0x51
OP_IF = 0x63
OP_ELSE = 0x67
OP_ENDIF = 0x68
OP_DROP = 0x75
OP_CHECKSIG = 0xAC
OP_CHECKSIGVERIFY = 0xAD
OP_CHECKLOCKTIMEVERIFY = 0xB1

MIN_EXP_TIME = 500_000_000
MAX_EXP_TIME = 0xFFFFFFFF


def script_num(n: int) -> bytes:
    """Minimal CScriptNum encoding (spec 3.2)."""
    if n == 0:
        return b""
    neg = n < 0
    absval = -n if neg else n
    out = bytearray()
    while absval:
        out.append(absval & 0xFF)
        absval >>= 8
    if out[-1] & 0x80:
        out.append(0x80 if neg else 0x00)
    elif neg:
        out[-1] |= 0x80
    return bytes(out)


def push_data(data: bytes) -> bytes:
    """The shortest push of data (direct length, PUSHDATA1 or PUSHDATA2)."""
    n = len(data)
    if n < OP_PUSHDATA1:
        return bytes([n]) + data
    if n <= 0xFF:
        return bytes([OP_PUSHDATA1, n]) + data
    if n <= 0xFFFF:
        return bytes([OP_PUSHDATA2]) + n.to_bytes(2, "little") + data
    raise InvalidInput("push too large")


def check_exp_time(exp_time: int) -> int:
    """Validate a timestamp lock time (spec 2.3, 7.1)."""
    if isinstance(exp_time, bool) or not isinstance(exp_time, int):
        raise InvalidInput("exp_time must be an integer")
    if exp_time < MIN_EXP_TIME:
        raise InvalidInput("block index/number as channel expiration date is unsupported")
    if exp_time > MAX_EXP_TIME:
        raise InvalidInput("exp_time above 2^32-1")
    return exp_time


def channel_redeem_script(server_pubkey: bytes, client_pubkey: bytes, exp_time: int) -> bytes:
    """The CLTV channel script: server key (IF), exp_time CLTV (ELSE), client key (spec 3.1)."""
    check_exp_time(exp_time)
    return b"".join(
        (
            bytes([OP_IF]), push_data(server_pubkey), bytes([OP_CHECKSIGVERIFY, OP_ELSE]),
            push_data(script_num(exp_time)), bytes([OP_CHECKLOCKTIMEVERIFY, OP_DROP, OP_ENDIF]),
            push_data(client_pubkey), bytes([OP_CHECKSIG]),
        )
    )


def parse_channel_script(script: bytes) -> tuple[bytes, bytes, int]:
    """Recognise a channel redeem script; return (server_pubkey, client_pubkey, exp_time)."""
    if len(script) not in (80, 81):
        raise InvalidInput("not a channel redeem script (length)")
    if script[0] != OP_IF or script[1] != 33 or script[35] != OP_CHECKSIGVERIFY or script[36] != OP_ELSE:
        raise InvalidInput("not a channel redeem script")
    nlen = script[37]
    if nlen not in (4, 5) or len(script) != 76 + nlen:
        raise InvalidInput("not a channel redeem script (lock time push)")
    num = script[38 : 38 + nlen]
    exp_time = int.from_bytes(num, "little")
    if num[-1] & 0x80:
        raise InvalidInput("negative lock time in channel script")
    rest = script[38 + nlen :]
    if rest[:3] != bytes([OP_CHECKLOCKTIMEVERIFY, OP_DROP, OP_ENDIF]) or rest[3] != 33 or rest[37] != OP_CHECKSIG:
        raise InvalidInput("not a channel redeem script")
    server_pk = script[2:35]
    client_pk = rest[4:37]
    check_exp_time(exp_time)
    if script_num(exp_time) != num:
        raise InvalidInput("non-minimal lock time in channel script")
    return server_pk, client_pk, exp_time
