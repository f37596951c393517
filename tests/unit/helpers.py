"""Shared constants (spec section 13), channel builders, hypothesis strategies and python-bitcoinlib
oracles for the unit tier. Test modules import from here; fixtures wrapping these live in conftest.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bitcoin.core import CTransaction
from bitcoin.core.script import CScript, RawSignatureHash
from bitcoin.core.scripteval import SCRIPT_VERIFY_P2SH, VerifyScript
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from paychan_common.address import Address
from paychan_common.amount import MAX_MONEY
from paychan_common.der import CURVE_ORDER
from paychan_common.errors import PaychanError
from paychan_common.messages import ErrorBody
from paychan_common.network import Network
from paychan_common.rules import ChannelPolicy
from paychan_common.script import MAX_EXP_TIME, MIN_EXP_TIME
from paychan_common.tx import OutPoint, Transaction
from paychan_runtime.http_errors import http_status
from tests.support.channels import Chan as Chan  # re-exported: the unit tests take them from here
from tests.support.channels import make_chan as make_chan

# ---------------------------------------------------------------------------------------------
# Spec 13.1 -- vector A (real 2016 data)
# ---------------------------------------------------------------------------------------------
A_CLIENT_PUBKEY = "02d320b6da0190089ed63667cf497d9c1e949be05b6f991832ae9397eb34a66e65"
A_SERVER_SECRET = "456af7395529404380edc4fa35a161e096aa510610b98d3d219dc178dc58c1d7"
A_SERVER_PUBKEY = "03b5ad36dca793edf4664cd51b4d3fb41d35d0bd92c60f62ed08b2b55fdb2c5a6d"
A_EXP_TIME = 1466288456
A_EXP_NUM = "48c96557"
A_REDEEM_SCRIPT = (
    "632103b5ad36dca793edf4664cd51b4d3fb41d35d0bd92c60f62ed08b2b55fdb2c5a6dad670448c96557b175682102d320b6da"
    "0190089ed63667cf497d9c1e949be05b6f991832ae9397eb34a66e65ac"
)
A_P2SH_LIVE = "34TaUPb6L76dPscD45Ddi4Lzr5s6cd8pjC"
A_P2SH_TEST = "2Mv1nY8X7wZbybfEkjCqWL1LG4S5GNfQmdu"
A_SHA256_PK = "c3d4e98323f071f37e42cb0cf0486b166d4227ed91513236aa55d7768d762e11"
A_FUNDING_TXID = "112e768d76d755aa36325191ed27426d166b48f00ccb427ef371f02383e9d4c3"
A_FUNDING_VOUT = 3
A_FUNDING_VALUE = 12345678900000
A_CHANGE_ADDRESS = "mmA2XECa7bVERzQKkyy1pNBQ3PC4HnxTC5"
A_PAY1 = ("OCfOczoLAAAwRQIhAOzfueLz55pXhrqWAjC4UZ72j17ZCrkudg8dNVlkgUtLAiB3nMc4Gs7535IXOq3Jf6ohkchvynieckFmwCS"
          "bBwBjW4M=")
A_PAY1_CHANGE = 12345678899000
A_PAY1_DER = ("3045022100ecdfb9e2f3e79a5786ba960230b8519ef68f5ed90ab92e760f1d355964814b4b0220779cc7381acef9df92173a"
              "adc97faa2191c86fca789e724166c0249b0700635b")
A_PAY1_PREIMAGE = (
    "0100000001c3d4e98323f071f37e42cb0cf0486b166d4227ed91513236aa55d7768d762e110300000050632103b5ad36dca793edf4"
    "664cd51b4d3fb41d35d0bd92c60f62ed08b2b55fdb2c5a6dad670448c96557b175682102d320b6da0190089ed63667cf497d9c1e94"
    "9be05b6f991832ae9397eb34a66e65acffffffff013827ce733a0b00001976a9143ddb8c53651c445a5bbdd1fb323f9704da23fc4a"
    "88ac0000000083000000"
)
A_PAY1_DIGEST = "745fa5e30b7899af4ff33142cac9ad7a064f2986ef78184aa6d39488cd683a9f"
A_PAY2 = ("LifOczoLAAAwRQIhAOZ3g2uVLbEwY_j0HDs8bxMW_m6dcTphJ9jzSQgAHrtuAiA0ElapVhwIvURKtw5AzwEkwuZYxpqLWcayAlM"
          "SLOfE-YM=")
A_PAY2_CHANGE = 12345678898990
A_PAY2_DIGEST = "41801e88715314c3ef979a860ba254f21dca9f9e4295230acce16a9ccbb7f025"

# ---------------------------------------------------------------------------------------------
# Spec 13.2 -- vector B (synthetic, v2-seed flow, testnet, debug funding)
# ---------------------------------------------------------------------------------------------
B_CLIENT_SECRET = "11" * 32
B_CLIENT_PUBKEY = "034f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aa"
B_SERVER_SECRET = "9b4b4cf8f8796ca8a3a8a3da5c73deeb7c558a89e3752b896349ec58c010879d"
B_SERVER_PUBKEY = "0225b3aaf58992a8cc909522c2ec859ef218fd29fda0a6723cfb4e0529f80cc8f3"
B_EXP_TIME = 1500000000
B_EXP_NUM = "002f6859"
B_REDEEM_SCRIPT = (
    "63210225b3aaf58992a8cc909522c2ec859ef218fd29fda0a6723cfb4e0529f80cc8f3ad6704002f6859b1756821034f355bdcb7"
    "cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aaac"
)
B_HASH160 = "42d80af54ea1357a2ead435acecd581e847900b1"
B_P2SH_LIVE = "37nTL82AdbbHrWrFEo4exYydUGLEGyHs97"
B_P2SH_TEST = "2MyLfPrxCF46e4JUnuvgXaVxtgcYQ6EUK7W"
B_FUNDING_SPK = "a91442d80af54ea1357a2ead435acecd581e847900b187"
B_SHA256_PK = "5b6b92b37b765963ab61d52a3171a54da33778c13118108f918e78cd2a8e3c15"
B_FUNDING_TXID = "153c8e2acd788e918f101831c17837a34da571312ad561ab6359767bb3926b5b"
B_FUNDING_VOUT = 2
B_FUNDING_VALUE = 12345678900000
B_CLIENT_ADDRESS = "n4XmX91N5FfccY678vaG1ELNtXh6skVES7"
B_DESTINATION = "mm9mm96b8bZRBacaAvY5MEeDd6HW46qFcY"

B_OPEN_CHANGE = 12345678800000
B_OPEN_UNSIGNED_TX = (
    "01000000015b6b92b37b765963ab61d52a3171a54da33778c13118108f918e78cd2a8e3c150200000000ffffffff0180a4cc733a0b"
    "000017a91442d80af54ea1357a2ead435acecd581e847900b18700000000"
)
B_OPEN_PREIMAGE = (
    "01000000015b6b92b37b765963ab61d52a3171a54da33778c13118108f918e78cd2a8e3c15020000005063210225b3aaf58992a8cc"
    "909522c2ec859ef218fd29fda0a6723cfb4e0529f80cc8f3ad6704002f6859b1756821034f355bdcb7cc0af728ef3cceb9615d9068"
    "4bb5b2ca5f859ab0f0b704075871aaacffffffff0180a4cc733a0b000017a91442d80af54ea1357a2ead435acecd581e847900b187"
    "0000000083000000"
)
B_OPEN_DIGEST = "d8518460aec0f10ef4af8ccd138818a729ab80c26445990182e05b9f438da082"
B_OPEN_SIG = ("3045022100c126d4b7f8d93bbbb4c6d16b02de945aea571b3701c186e1a923c6819cbe0f78022052fba4b82226ee555d9edd"
              "8b9b3f879a79feb1d6da21641e18aa579576f70619")
B_OPEN_BODY = (
    '{"application_data": "", "payment_data": {"change_address": "2MyLfPrxCF46e4JUnuvgXaVxtgcYQ6EUK7W", '
    '"change_value": 12345678800000, "funding_txid": '
    '"153c8e2acd788e918f101831c17837a34da571312ad561ab6359767bb3926b5b", "funding_vout": 2, "redeem_script": '
    '"63210225b3aaf58992a8cc909522c2ec859ef218fd29fda0a6723cfb4e0529f80cc8f3ad6704002f6859b1756821034f355bdcb7'
    'cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aaac", "sighash_flag": "83", "signature_data": '
    '"3045022100c126d4b7f8d93bbbb4c6d16b02de945aea571b3701c186e1a923c6819cbe0f78022052fba4b82226ee555d9edd8b9b'
    '3f879a79feb1d6da21641e18aa579576f70619"}}'
)
B_OPEN_SECRET = "cfd50a1ec7a36146fbbe5680078e3df458feb82013430980f8b0aba786418fd6"

B_PAY2_CHANGE = 12345678799999
B_PAY2_DIGEST = "77f3461316eb4afbc440231c4e4a036fa635230e80a1ab0742c59aa311d2ee25"
B_PAY2_SIG = ("3044022052a66ddca8fb8fc711f0af463ea810ef4b504c1c9efffd1b09120c0ee1dcea8a0220226a5e8606ba752b9ad3a2ed"
              "1847025166c80c61df3dccf0cb5bb83dc5d02265")

B_NONE_PREIMAGE = (
    "01000000015b6b92b37b765963ab61d52a3171a54da33778c13118108f918e78cd2a8e3c15020000005063210225b3aaf58992a8cc"
    "909522c2ec859ef218fd29fda0a6723cfb4e0529f80cc8f3ad6704002f6859b1756821034f355bdcb7cc0af728ef3cceb9615d9068"
    "4bb5b2ca5f859ab0f0b704075871aaacffffffff000000000082000000"
)
B_NONE_DIGEST = "4b73c5625181d54eb3c87cc1b891bbf356bf59bfd1f280acb5a735c0444b5869"

B_CLOSE_CHANGE = 12345678799999
B_CLOSE_DIGEST = "bc29a665e1e46c3d14792fa0441b55b35ed87ebb55966ce8e1fb6a7a53f011f2"
B_CLOSE_SIG = ("3044022027a3285d7e1808f4ab74674e6246532856148e8b3b18062292b7cec73c39006002204fe42ca94e46c272e6618b52"
               "8ffdd079cd7ca7a7271c1db517134a430e77be67")

B_SETTLE_FEE = 13920
B_SETTLE_SERVER_VALUE = 86081
B_SETTLE_DIGEST = "9d4018d53ac71de71c0d128a83689c98be5c58e0dee4928c8dbab464c4f8b71f"
B_SETTLE_SERVER_SIG = ("3045022100fb6eb05c93e7009f4cbc3f4dc2ebeef736f66b3d618a99420fb1da0bba2a0cf602202fb2df556c5cf77b"
                       "ded5b7c660d6903f9e802e8a651126a3074edbc3fedcf982")
B_SETTLE_TX = (
    "01000000015b6b92b37b765963ab61d52a3171a54da33778c13118108f918e78cd2a8e3c1502000000e4473044022027a3285d7e18"
    "08f4ab74674e6246532856148e8b3b18062292b7cec73c39006002204fe42ca94e46c272e6618b528ffdd079cd7ca7a7271c1db5"
    "17134a430e77be6783483045022100fb6eb05c93e7009f4cbc3f4dc2ebeef736f66b3d618a99420fb1da0bba2a0cf602202fb2df"
    "556c5cf77bded5b7c660d6903f9e802e8a651126a3074edbc3fedcf98201514c5063210225b3aaf58992a8cc909522c2ec859ef2"
    "18fd29fda0a6723cfb4e0529f80cc8f3ad6704002f6859b1756821034f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859a"
    "b0f0b704075871aaacffffffff027fa4cc733a0b00001976a914fc7250a211deddc70ee5a2738de5f07817351cef88ac41500100"
    "000000001976a9143dcf3a1d00f3d21789ea6595003305bd3368c0ba88ac00000000"
)
B_SETTLE_SIZE = 347
B_SETTLE_TXID = "754c727936f9688ae25011f10082c415e9f889ddd112f306beb4d3617402c315"

B_REFUND_FEE = 1000
B_REFUND_VALUE = 12345678899000
B_REFUND_DIGEST = "1308dda4915c31ff65e9789bc433519ede9590d00c2af7feb9a4172f91a0b6cd"
B_REFUND_TX = (
    "01000000015b6b92b37b765963ab61d52a3171a54da33778c13118108f918e78cd2a8e3c15020000009c483045022100d95256c5f0"
    "c4b9cfec765cd152858e409379e02f2d386be51d1733d1049e083902205c984e5c9e6c98bc995903b2ed7404300d3da7f5fdc946"
    "2c0d37ffea8c171c3301004c5063210225b3aaf58992a8cc909522c2ec859ef218fd29fda0a6723cfb4e0529f80cc8f3ad670400"
    "2f6859b1756821034f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aaacfeffffff013827ce733a0b"
    "00001976a914fc7250a211deddc70ee5a2738de5f07817351cef88ac002f6859"
)
B_REFUND_TXID = "7bf624e15f313e2033a6d1f4df943ea9f25612e72a23b3e44420d0ca964153e3"

# ---------------------------------------------------------------------------------------------
# Spec 13.3 -- lock-time pushes; 13.4 -- vector D (v1 payloads); 13.5 -- benchmark key
# ---------------------------------------------------------------------------------------------
LOCKTIME_PUSHES = (
    (500000000, "040065cd1d"),
    (1466288456, "0448c96557"),
    (1500000000, "04002f6859"),
    (2147483647, "04ffffff7f"),
    (2147483648, "050000008000"),
    (4294967295, "05ffffffff00"),
)

D_OPEN_CHANGE = 12345678816080
D_OPEN_VALUE = 83920
D_OPEN_DIGEST = "76c45cfe17e6c9e6f66219e554433b4307c50126607bf26873f3d4ee69c85c29"
D_OPEN_PAYLOAD_HEX = (
    "50e3cc733a0b00003045022100b754de5f6ee30e23610a85e778966058392b7f683ade753825a83d91aecd88ea0220081c8ad65360"
    "47056b2a435e4259a84e44e0c88caa2f3898927bfb546d9c0b7083"
)
D_OPEN_PAYLOAD = ("UOPMczoLAAAwRQIhALdU3l9u4w4jYQqF53iWYFg5K39oOt51OCWoPZGuzYjqAiAIHIrWU2BHBWsqQ15CWahORODIjKovOJiSe_tU"
                  "bZwLcIM")
D_EXHAUST_DIGEST = "4b73c5625181d54eb3c87cc1b891bbf356bf59bfd1f280acb5a735c0444b5869"
D_EXHAUST_PAYLOAD = ("AAAAAAAAAAAwRAIgRS69VykT8OZS9s_Jv7CZRjvjmeLCtdLxn6WUgO80nYQCIC8T-CkUBjNjlUdagvjvGl7wu4_Vb-96tzaV1"
                     "E-H6lPxgg")

BENCH_CLIENT_PUBKEY = "03da3afe4f58992a8cc909522c2ec859ef218fd92fda0a67c23fb40e0303030405"
BENCH_P2SH_TEST = "2NEQahmapUBueLzinJEViGkLdXRrzskH7Px"
BENCH_P2SH_LIVE = "3NrNe2enrjQJ9D6Ed6sqeoMNK5eq8wGp7P"
BENCH_SWAGGER_EXAMPLE_ADDRESS = "2NCTirSGjFM8T7hUow3AcfyFaw1N1APnYuP"
BENCH_FUNDING_TXID = "47b023391db64776cc91c6e2180fd25836716162c3358c4d612619ee94e51ad7"
BENCH_FUNDING_VOUT = 2

DEFAULT_POLICY = ChannelPolicy()  # dust 700, open price 100000, 10 conf, 12 h settlement, 48 h duration


def vector_b_chan() -> Chan:
    """The channel of spec vector B (testnet, debug funding)."""
    return make_chan(bytes.fromhex(B_CLIENT_SECRET), bytes.fromhex(B_SERVER_SECRET), B_EXP_TIME, Network.TEST)


# ---------------------------------------------------------------------------------------------
# python-bitcoinlib oracles
# ---------------------------------------------------------------------------------------------
def bitcoinlib_sighash(tx: Transaction, index: int, script_code: bytes, hashtype: int) -> bytes:
    """Consensus legacy SignatureHash computed by python-bitcoinlib (HASH_ONE cases included)."""
    digest, _err = RawSignatureHash(CScript(script_code), CTransaction.deserialize(tx.serialize()), index, hashtype)
    return bytes(digest)


def bitcoinlib_verify_p2sh(tx: Transaction, funding_script_pubkey: bytes, index: int = 0) -> None:
    """Raise unless input `index` satisfies the P2SH scriptPubKey (CLTV is not evaluated by the library)."""
    ctx = CTransaction.deserialize(tx.serialize())
    VerifyScript(ctx.vin[index].scriptSig, CScript(funding_script_pubkey), ctx, index, flags=(SCRIPT_VERIFY_P2SH,))


# ---------------------------------------------------------------------------------------------
# Error helpers
# ---------------------------------------------------------------------------------------------
def only_typed_errors(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> PaychanError | None:
    """Call fn; return None on success, the error if it is a PaychanError; anything else propagates."""
    try:
        fn(*args, **kwargs)
    except PaychanError as exc:
        assert isinstance(exc.message, str) and exc.message
        assert 400 <= http_status(exc) < 600
        return exc
    return None


def assert_error(exc: BaseException, cls: type[PaychanError], code: str, status: int) -> None:
    """The error is exactly of this class and code, and gets this HTTP status at the edge."""
    assert type(exc) is cls, f"{type(exc).__name__} is not {cls.__name__}: {exc}"
    assert isinstance(exc, PaychanError)
    assert exc.code == code, f"code {exc.code!r} != {code!r} ({exc.message})"
    assert http_status(exc) == status
    assert ErrorBody(type=exc.kind, code=exc.code, message=exc.message).code == code


# ---------------------------------------------------------------------------------------------
# Hypothesis settings and strategies
# ---------------------------------------------------------------------------------------------
def fast(max_examples: int) -> settings:
    """Per-test hypothesis settings: bounded example count, no deadline (signing can be slow on CI)."""
    return settings(max_examples=max_examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def secrets() -> st.SearchStrategy[bytes]:
    """Valid secp256k1 secret keys (edges included)."""
    return st.one_of(
        st.sampled_from([1, 2, CURVE_ORDER - 1, CURVE_ORDER // 2]),
        st.integers(min_value=1, max_value=CURVE_ORDER - 1),
    ).map(lambda i: i.to_bytes(32, "big"))


def exp_times() -> st.SearchStrategy[int]:
    """Valid timestamp lock times, with the push-length boundaries."""
    return st.one_of(
        st.sampled_from([MIN_EXP_TIME, 2**31 - 1, 2**31, MAX_EXP_TIME, 0x7FFFFF00, 0x80000000 + 0x7F]),
        st.integers(min_value=MIN_EXP_TIME, max_value=MAX_EXP_TIME),
    )


def networks() -> st.SearchStrategy[Network]:
    return st.sampled_from(list(Network))


def outpoints() -> st.SearchStrategy[OutPoint]:
    return st.builds(OutPoint, st.binary(min_size=32, max_size=32), st.integers(min_value=0, max_value=2**32 - 1))


def amounts(max_value: int = MAX_MONEY) -> st.SearchStrategy[int]:
    return st.integers(min_value=0, max_value=max_value)


@st.composite
def addresses(draw: st.DrawFn, network: Network) -> Address:
    """Any supported output address of the network: P2PKH, P2SH, P2WPKH, P2WSH, P2TR."""
    kind = draw(st.sampled_from(["p2pkh", "p2sh", "p2wpkh", "p2wsh", "p2tr"]))
    if kind == "p2pkh":
        return Address.p2pkh(draw(st.binary(min_size=20, max_size=20)), network)
    if kind == "p2sh":
        return Address.p2sh(draw(st.binary(min_size=20, max_size=20)), network)
    if kind == "p2wpkh":
        return Address.segwit(0, draw(st.binary(min_size=20, max_size=20)), network)
    if kind == "p2wsh":
        return Address.segwit(0, draw(st.binary(min_size=32, max_size=32)), network)
    return Address.segwit(1, draw(st.binary(min_size=32, max_size=32)), network)


@st.composite
def chans(draw: st.DrawFn, *, min_funding: int = 1) -> Chan:
    """A random channel: random keys, expiry, network, outpoint and funding value."""
    client = draw(secrets())
    server = draw(secrets())
    return make_chan(client, server, draw(exp_times()), draw(networks()), outpoint=draw(outpoints()),
                     funding_value=draw(st.integers(min_value=min_funding, max_value=MAX_MONEY)))


def mutate(data: bytes) -> st.SearchStrategy[bytes]:
    """Small corruptions of valid bytes: flip, truncate, extend, splice."""
    n = len(data)

    @st.composite
    def _mutated(draw: st.DrawFn) -> bytes:
        how = draw(st.sampled_from(["flip", "truncate", "extend", "set", "insert", "delete"]))
        buf = bytearray(data)
        if how == "flip" and n:
            i = draw(st.integers(0, n - 1))
            buf[i] ^= 1 << draw(st.integers(0, 7))
        elif how == "truncate":
            del buf[draw(st.integers(0, n)) :]
        elif how == "extend":
            buf += draw(st.binary(min_size=1, max_size=8))
        elif how == "set" and n:
            buf[draw(st.integers(0, n - 1))] = draw(st.integers(0, 255))
        elif how == "insert":
            i = draw(st.integers(0, n))
            buf[i:i] = draw(st.binary(min_size=1, max_size=4))
        elif how == "delete" and n:
            i = draw(st.integers(0, n - 1))
            del buf[i : i + draw(st.integers(1, 4))]
        return bytes(buf)

    return _mutated()


def json_values(max_leaves: int = 8) -> st.SearchStrategy[Any]:
    """Arbitrary JSON values: null, bools, ints (huge too), floats, strings, lists, objects."""
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=80),
        st.text(alphabet="0123456789abcdefABCDEF", max_size=160),
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(st.lists(children, max_size=4),
                                   st.dictionaries(st.text(max_size=16), children, max_size=4)),
        max_leaves=max_leaves,
    )
