"""The stored channel state and its binary codec.

Format 1 holds the newest settlement only; format 2 (written only when there is more than one signed
version, so a format-1 state re-serializes to the same bytes and ChanStore's compare-and-set hashes stay
valid) appends the earlier signed versions of the settlement, oldest first (spec 8.6). Both are read."""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from .errors import InvalidInput
from .tx import OutPoint


class Family(enum.Enum):
    """Route family the channel was opened through (spec 0.1); `label` is its one name in text (logs,
    metrics, the management API, the OpenAPI tags): "v1", "v2-seed", "v2.3.0"."""

    V1 = 1
    V2_SEED = 2
    V2_3 = 3

    @property
    def label(self) -> str:
        """The canonical name: v1, v2-seed or v2.3.0."""
        return _FAMILY_LABELS[self]

    @classmethod
    def parse(cls, text: str) -> Family:
        """A family from its label or a short spelling users type: "v2" (v2-seed), "v2.3" (v2.3.0)."""
        family = _FAMILY_NAMES.get(text)
        if family is None:
            raise InvalidInput(f"unknown route family {text!r} (expected v1, v2-seed or v2.3.0)")
        return family


_FAMILY_LABELS = {Family.V1: "v1", Family.V2_SEED: "v2-seed", Family.V2_3: "v2.3.0"}
_FAMILY_NAMES = {**{label: family for family, label in _FAMILY_LABELS.items()},
                 "v2": Family.V2_SEED, "v2.3": Family.V2_3}


class Status(enum.Enum):
    """Channel life (docs/ARCHITECTURE.md): open -> closing -> closed.

    closing: the settlement is being signed, stored, published and followed until it has the configured
    number of confirmations; closed: it has them, or (`ChannelState.refunded`) the funding output was spent
    by another transaction, presumably the client's refund after exp_time.
    """

    OPEN = 1
    CLOSING = 2
    CLOSED = 3

    @property
    def label(self) -> str:
        """Lower-case name."""
        return self.name.lower()


_FORMAT_VERSION = 1
_FORMAT_WITH_VERSIONS = 2
MAX_SETTLEMENT_VERSIONS = 64
_HEAD = struct.Struct("<BBB33sIQQQBIqq")
_PAYMENT = struct.Struct("<QQBIqq")  # the head's tail: change_value .. last_payment_time
_PAYMENT_AT = _HEAD.size - _PAYMENT.size
_U32 = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class ChannelState:
    """Everything known about one channel; immutable, a change returns a new value."""

    client_pubkey: bytes
    exp_time: int
    outpoint: OutPoint
    funding_value: int
    redeem_script: bytes
    change_address: str
    change_script: bytes
    family: Family
    status: Status
    change_value: int
    signature: bytes  # low-S DER of the latest payment
    sighash: int
    secret: bytes  # SHA256 of the opening signature push (v2.3.0 `secret`)
    payment_count: int
    open_time: int
    last_payment_time: int
    settlement_tx: bytes = b""
    settlement_txid: str = ""
    settlement_fee: int = 0
    earlier_settlements: tuple[bytes, ...] = ()  # earlier signed versions (replaced by fee), oldest first

    @property
    def settlement_versions(self) -> tuple[bytes, ...]:
        """Every signed version of the settlement, oldest first; the last one is followed (spec 8.6)."""
        return (*self.earlier_settlements, self.settlement_tx) if self.settlement_tx else self.earlier_settlements

    @property
    def bumps(self) -> int:
        """How many times the settlement was replaced by a higher-fee version."""
        return len(self.earlier_settlements)

    @property
    def value_received(self) -> int:
        """Total value the server holds in this channel (funding minus client change)."""
        return self.funding_value - self.change_value

    @property
    def refunded(self) -> bool:
        """Closed without a settlement of ours: another transaction (the client's refund) spent the funding.
        The unconfirmed settlement stays in settlement_tx; settlement_txid is emptied."""
        return self.status is Status.CLOSED and not self.settlement_txid

    @property
    def exhausted(self) -> bool:
        """True after a SIGHASH_NONE payment gave all value to the server."""
        return self.change_value == 0 and self.sighash == 0x82

    def with_payment(self, change_value: int, signature: bytes, sighash: int, now: int,
                     change_address: str | None = None, change_script: bytes | None = None) -> ChannelState:
        """A new state carrying a newer payment (built field by field: `dataclasses.replace` costs 3x more,
        and this runs for every payment; `tests/unit/test_codecs.py` checks it equals the `replace`)."""
        return ChannelState(
            self.client_pubkey, self.exp_time, self.outpoint, self.funding_value, self.redeem_script,
            self.change_address if change_address is None else change_address,
            self.change_script if change_script is None else change_script,
            self.family, self.status, change_value, signature, sighash, self.secret, self.payment_count + 1,
            self.open_time, now, self.settlement_tx, self.settlement_txid, self.settlement_fee,
            self.earlier_settlements,
        )

    def serialize_after(self, previous: ChannelState, data: bytes) -> bytes:
        """`self.serialize()`, given `data == previous.serialize()`: when `self` differs from `previous` only in
        the fields a payment sets (change value, signature, sighash, payment count, last payment time: what
        `with_payment` changes without a new change address), those are rewritten into a copy of `data`
        (no full encoding); otherwise, a full `serialize()`. The other fields are compared by identity, so
        a state not made by `with_payment` from `previous` falls back to the full encoding."""
        if not (self.client_pubkey is previous.client_pubkey and self.exp_time is previous.exp_time
                and self.outpoint is previous.outpoint and self.funding_value is previous.funding_value
                and self.redeem_script is previous.redeem_script and self.change_address is previous.change_address
                and self.change_script is previous.change_script and self.family is previous.family
                and self.status is previous.status and self.secret is previous.secret
                and self.settlement_tx is previous.settlement_tx and self.settlement_txid is previous.settlement_txid
                and self.settlement_fee is previous.settlement_fee
                and self.earlier_settlements is previous.earlier_settlements):
            return self.serialize()
        pos = _HEAD.size + 36  # after the head and the outpoint: the blobs; the signature is the fourth
        for _ in range(3):
            pos += 4 + _U32.unpack_from(data, pos)[0]
        end = pos + 4 + _U32.unpack_from(data, pos)[0]
        payment = _PAYMENT.pack(self.change_value, self.settlement_fee, self.sighash, self.payment_count,
                                self.open_time, self.last_payment_time)
        return b"".join((data[:_PAYMENT_AT], payment, data[_HEAD.size : pos], _U32.pack(len(self.signature)),
                         self.signature, data[end:]))

    def serialize(self) -> bytes:
        """Versioned binary encoding (format 2 only when there are earlier settlement versions)."""
        head = _HEAD.pack(
            _FORMAT_WITH_VERSIONS if self.earlier_settlements else _FORMAT_VERSION, self.family.value,
            self.status.value, self.client_pubkey, self.exp_time,
            self.funding_value, self.change_value, self.settlement_fee, self.sighash, self.payment_count,
            self.open_time, self.last_payment_time,
        )
        parts = [head, self.outpoint.serialize()]
        for blob in (self.redeem_script, self.change_address.encode(), self.change_script, self.signature,
                     self.secret, self.settlement_tx, self.settlement_txid.encode()):
            parts.append(struct.pack("<I", len(blob)))
            parts.append(blob)
        if self.earlier_settlements:
            parts.append(struct.pack("<I", len(self.earlier_settlements)))
            for blob in self.earlier_settlements:
                parts.append(struct.pack("<I", len(blob)))
                parts.append(blob)
        return b"".join(parts)

    @classmethod
    def parse(cls, data: bytes) -> ChannelState:
        """Inverse of serialize; rejects truncation and trailing bytes."""
        try:
            (ver, fam, st, pk, exp, fval, change, fee, sighash, count, opened, last) = _HEAD.unpack_from(data, 0)
            if ver not in (_FORMAT_VERSION, _FORMAT_WITH_VERSIONS):
                raise InvalidInput(f"unknown channel state format {ver}")
            pos = _HEAD.size
            outpoint = OutPoint.parse(data[pos : pos + 36])
            pos += 36
            blobs, pos = _blobs(data, pos, 7)
            earlier: list[bytes] = []
            if ver == _FORMAT_WITH_VERSIONS:
                (n_earlier,) = struct.unpack_from("<I", data, pos)
                if not 1 <= n_earlier <= MAX_SETTLEMENT_VERSIONS:
                    raise InvalidInput(f"channel state with {n_earlier} earlier settlement versions")
                earlier, pos = _blobs(data, pos + 4, n_earlier)
            if pos != len(data):
                raise InvalidInput("trailing bytes after channel state")
            return cls(
                client_pubkey=pk, exp_time=exp, outpoint=outpoint, funding_value=fval,
                redeem_script=blobs[0], change_address=blobs[1].decode(), change_script=blobs[2],
                family=Family(fam), status=Status(st), change_value=change, signature=blobs[3],
                sighash=sighash, secret=blobs[4], payment_count=count, open_time=opened,
                last_payment_time=last, settlement_tx=blobs[5], settlement_txid=blobs[6].decode(),
                settlement_fee=fee, earlier_settlements=tuple(earlier),
            )
        except (struct.error, ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"corrupt channel state: {exc}") from None


def _blobs(data: bytes, pos: int, count: int) -> tuple[list[bytes], int]:
    """count length-prefixed blobs from pos; the position after them."""
    blobs: list[bytes] = []
    for _ in range(count):
        (n,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if pos + n > len(data):
            raise InvalidInput("truncated channel state")
        blobs.append(data[pos : pos + n])
        pos += n
    return blobs, pos
