"""`paychan-client`: keygen, info, fund, wait-conf, open, pay, close, refund, status, get; JSON lines on stdout."""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any, NoReturn

import httpx

from paychan_common.channel import debug_funding
from paychan_common.errors import PaychanError
from paychan_common.keys import PrivateKey
from paychan_common.network import Network
from paychan_common.tx import OutPoint
from paychan_common.version import version_string
from paychan_runtime.bitcoin_rpc import RpcError

from .api import PaychanClient
from .draft import ChannelDraft, load_any
from .errors import (
    ChannelStateError,
    ClientError,
    InvalidArgument,
    ServerRejected,
    StateFileError,
    server_closed,
)
from .models import parse_family
from .paying import Budget, ChannelWallet, PayingAuth, debug_funder, get_ranges, origin
from .payments import client_address, parse_address
from .refund import RefundValidity, SettlementConfirmed, build_refund_tx
from .rpc import NodeClient
from .state import ClientChannel
from .terms import OpenPlan, check_exp_time

DEFAULT_DURATION_HOURS = 7 * 24


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


class _UsageError(Exception):
    pass


class _Context:
    """Parsed arguments plus the HTTP transport (injectable for tests)."""

    def __init__(self, args: argparse.Namespace, transport: httpx.BaseTransport | None) -> None:
        self.args = args
        self.transport = transport
        self._clients: list[httpx.Client] = []

    def http(self) -> httpx.Client:
        """A fresh HTTP client, closed by release()."""
        client = httpx.Client(transport=self.transport, timeout=self.args.timeout)
        self._clients.append(client)
        return client

    def release(self) -> None:
        """Close every HTTP client made by http()."""
        for client in self._clients:
            client.close()
        self._clients.clear()

    def emit(self, obj: dict[str, Any]) -> None:
        """One JSON line on stdout."""
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    def load(self) -> ClientChannel | ChannelDraft:
        """Load the state file and check --network/--family against it."""
        state = load_any(self.args.state)
        if self.args.network and Network.parse(self.args.network) is not state.network:
            raise InvalidArgument(f"state file is for network {state.network.params.name}")
        if self.args.family and parse_family(self.args.family) is not state.family:
            raise InvalidArgument(f"state file is for route family {state.family.label}")
        return state

    def draft(self) -> ChannelDraft:
        """The state file, which must not hold an opened channel yet."""
        state = self.load()
        if isinstance(state, ClientChannel):
            raise ChannelStateError("the channel is already open")
        return state

    def channel(self) -> ClientChannel:
        """The state file, which must hold an opened channel."""
        state = self.load()
        if isinstance(state, ChannelDraft):
            raise ChannelStateError("no channel opened yet: run `open` first")
        return state

    def client(self, network: Network, endpoint: str | None) -> PaychanClient:
        """A PaychanClient on --endpoint (or the one given)."""
        url = self.args.endpoint or endpoint
        if not url:
            raise InvalidArgument("no endpoint: give --endpoint")
        return PaychanClient(url, network, http=self.http(), timeout=self.args.timeout)

    def rpc(self) -> NodeClient:
        """bitcoind JSON-RPC from --rpc-url and credentials."""
        a = self.args
        if not a.rpc_url:
            raise InvalidArgument("this command needs --rpc-url")
        return NodeClient(a.rpc_url, user=a.rpc_user or "", password=a.rpc_password or "",
                          cookie_file=a.rpc_cookie or "", http=self.http(), timeout=a.timeout)


def _save(ctx: _Context, state: ClientChannel | ChannelDraft) -> None:
    state.save(ctx.args.state)


def cmd_keygen(ctx: _Context) -> None:
    """Make a client key and a new state file."""
    a = ctx.args
    network = Network.parse(a.network or "regtest")
    family = parse_family(a.family or "v2")
    if not a.force:
        try:
            load_any(a.state)
        except StateFileError as exc:
            if "does not exist" not in exc.message:
                raise
        else:
            raise InvalidArgument(f"state file {a.state} exists; use --force to replace it")
    key = PrivateKey(secrets.token_bytes(32))
    refund = parse_address(a.refund_address, network).text if a.refund_address else client_address(key, network)
    draft = ChannelDraft(network, family, key, endpoint=a.endpoint, refund_address=refund)
    _save(ctx, draft)
    ctx.emit({"event": "keygen", "client_pubkey": key.public_key.hex, "network": network.params.name,
              "family": family.label, "refund_address": refund, "state": a.state})


def cmd_info(ctx: _Context) -> None:
    """Fetch the channel terms, check the funding address, remember them."""
    a = ctx.args
    draft = ctx.draft()
    exp_time = a.exp_time or draft.exp_time
    if a.duration_hours is not None:
        exp_time = int(time.time()) + a.duration_hours * 3600
    if exp_time is None:
        exp_time = int(time.time()) + DEFAULT_DURATION_HOURS * 3600
    with ctx.client(draft.network, draft.endpoint) as client:
        info = client.funding_info(draft.client_key.public_key, exp_time, draft.family)
    check_exp_time(info, exp_time, int(time.time()))  # the server's rule (spec 7.2), before anything is funded
    if draft.funding_outpoint is not None and (exp_time, info.server_pubkey) != (draft.exp_time, draft.server_pubkey):
        raise ChannelStateError("funding already recorded for other terms; the funding address would change")
    draft = replace(draft, endpoint=a.endpoint or draft.endpoint, exp_time=exp_time,
                    server_pubkey=info.server_pubkey, dust_limit=info.dust_limit, open_price=info.open_price)
    _save(ctx, draft)
    ctx.emit({"event": "info", **info.to_json()})


def cmd_fund(ctx: _Context) -> None:
    """Record the funding output: send from the node wallet, derive debug funding, or take it as given; first
    refuse a channel the server would refuse to open (spec 7.2)."""
    a = ctx.args
    draft = ctx.draft()
    params = draft.params
    script = params.funding_address.script_pubkey
    if a.debug:
        if draft.network is Network.LIVE:
            raise InvalidArgument("debug funding exists only on test and regtest (spec 9)")
        fake = debug_funding(params.client_pubkey, params.exp_time, script)
        _check_fundable(ctx, draft, fake.value, 0)
        outpoint, value, txid = fake.outpoint, fake.value, None
    elif a.txid is not None:
        if a.vout is None or a.value is None:
            raise InvalidArgument("--txid needs --vout and --value")
        _check_fundable(ctx, draft, a.value, 0)  # already funded: say now that the open would fail
        outpoint, value, txid = OutPoint.from_display(a.txid.lower(), a.vout), a.value, None
    else:
        if a.amount_sat is None:
            raise InvalidArgument("fund needs --amount-sat with --rpc-url, or --debug, or --txid/--vout/--value")
        if draft.network is Network.LIVE:
            raise InvalidArgument("refusing to fund from a node wallet on the live network")
        _check_fundable(ctx, draft, a.amount_sat, None)
        rpc = ctx.rpc()
        try:
            txid = rpc.send_to_address(params.funding_address.text, a.amount_sat)
            outpoint, value = rpc.find_output(txid, script)
        finally:
            rpc.close()
    draft = replace(draft, funding_outpoint=outpoint, funding_value=value)
    _save(ctx, draft)
    ctx.emit({"event": "fund", "funding_address": params.funding_address.text, "funding_txid": outpoint.display_txid,
              "funding_vout": outpoint.vout, "funding_value": value, "sent_txid": txid})


def _check_fundable(ctx: _Context, draft: ChannelDraft, value: int, allowance: int | None) -> None:
    """Fresh terms from the server; TermsRefused if it would refuse this channel once funded (spec 7.2)."""
    params = draft.params
    if ctx.args.margin_seconds is not None:
        allowance = ctx.args.margin_seconds
    plan = OpenPlan(params.exp_time, value, ctx.args.open_value, draft.refund_address)
    with ctx.client(draft.network, draft.endpoint) as client:
        client.check_fundable(params.client_pubkey, plan, draft.family, allowance=allowance)


def cmd_wait_conf(ctx: _Context) -> None:
    """Poll gettxout until the funding output has N confirmations (regtest: --generate mines them)."""
    a = ctx.args
    state = ctx.load()
    outpoint = state.funding_outpoint
    if outpoint is None:
        raise ChannelStateError("no funding recorded yet: run `fund` first")
    rpc = ctx.rpc()
    try:
        deadline = time.monotonic() + a.wait_seconds
        delay = 0.1
        while True:
            conf = rpc.confirmations(outpoint)
            if conf is not None and conf >= a.confirmations:
                break
            if a.generate and state.network is Network.REGTEST:
                rpc.generate(a.confirmations - (conf or 0))
                continue
            if time.monotonic() >= deadline:
                raise ClientError(f"funding output {outpoint} has {conf} confirmations after {a.wait_seconds}s")
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
    finally:
        rpc.close()
    ctx.emit({"event": "confirmed", "funding_txid": outpoint.display_txid, "funding_vout": outpoint.vout,
              "confirmations": conf})


def cmd_open(ctx: _Context) -> None:
    """Send the opening payment (open price by default)."""
    a = ctx.args
    draft = ctx.draft()
    params = draft.params
    outpoint, value = draft.funding
    with ctx.client(draft.network, draft.endpoint) as client:
        info = client.funding_info(params.client_pubkey, params.exp_time, draft.family)
        if info.server_pubkey != draft.server_pubkey:
            raise ChannelStateError("the server key changed since `info`: the funding is at another address")
        update = client.open_channel(draft.client_key, params.exp_time, outpoint, value, draft.family,
                                     change_address=a.change_address, open_value=a.open_value,
                                     refund_address=draft.refund_address, info=info)
    _save(ctx, update.channel)
    ctx.emit({"event": "open", "channel_url": update.channel.channel_url, "change_value": update.channel.change_value,
              **update.result.model_dump()})


def cmd_pay(ctx: _Context) -> None:
    """Pay an amount over the open channel."""
    channel = ctx.channel()
    with ctx.client(channel.network, origin(channel.channel_url)) as client, _following(ctx, channel):
        update = client.pay(channel, ctx.args.amount, application_data=ctx.args.application_data)
    _save(ctx, update.channel)
    ctx.emit({"event": "pay", "change_value": update.channel.change_value,
              "sighash": f"{update.channel.sighash:02x}", **update.result.model_dump()})


def cmd_close(ctx: _Context) -> None:
    """Ask the server to settle the channel."""
    channel = ctx.channel()
    with ctx.client(channel.network, origin(channel.channel_url)) as client, _following(ctx, channel):
        update = client.close(channel, ctx.args.refund_address, fee=ctx.args.fee)
    _save(ctx, update.channel)
    ctx.emit({"event": "close", **update.result.model_dump()})


def cmd_refund(ctx: _Context) -> None:
    """Build (and with --rpc-url publish) the refund transaction, valid after exp_time."""
    a = ctx.args
    state = ctx.load()
    if isinstance(state, ClientChannel):
        params, outpoint, value, default_refund = (state.params, state.funding_outpoint, state.funding_value,
                                                   state.refund_address)
    else:
        params = state.params
        outpoint, value = state.funding
        default_refund = state.refund_address or client_address(state.client_key, state.network)
    if a.txid is not None:  # another output paying the channel script (e.g. a v2 settlement's change output)
        if a.vout is None or a.value is None:
            raise InvalidArgument("--txid needs --vout and --value")
        outpoint, value = OutPoint.from_display(a.txid.lower(), a.vout), a.value
    fee, fee_rate = (a.fee, None) if a.fee is not None else (None, a.fee_rate if a.fee_rate is not None else 1)
    address = a.refund_address or default_refund

    validity = RefundValidity(params.exp_time, None)

    def refund(out: OutPoint, amount: int, rpc: NodeClient | None) -> None:
        tx = build_refund_tx(params, state.client_key, out, amount, address, fee=fee, fee_rate=fee_rate)
        if rpc is not None:
            try:
                rpc.send_raw_transaction(tx.serialize().hex())
            except RpcError as exc:
                if "non-final" in exc.rpc_message:  # the node judges by the next block: say how long is left
                    raise RefundValidity(params.exp_time, rpc.median_time_past()).too_early() from None
                raise
        ctx.emit({"event": "refund", "txid": tx.txid, "tx": tx.serialize().hex(), "locktime": tx.locktime,
                  "value": tx.outputs[0].value, "published": rpc is not None,
                  "funding_txid": out.display_txid, "funding_vout": out.vout, **validity.to_json()})

    if not a.rpc_url:
        refund(outpoint, value, None)
        return
    rpc = ctx.rpc()
    try:
        validity = RefundValidity(params.exp_time, rpc.median_time_past())
        if not validity.valid:  # no block takes it yet (BIP113): nothing is sent to the node
            raise validity.too_early()
        try:
            if a.txid is None and rpc.spent_in_block(outpoint):
                # A confirmed settlement spent the funding: a refund of it must never be published (spec 8.6)
                raise SettlementConfirmed("the funding output is spent by a confirmed transaction (the "
                                          "server's settlement): no refund of it is published")
            refund(outpoint, value, rpc)
        except (RpcError, SettlementConfirmed) as exc:
            if a.txid is not None or not (isinstance(exc, SettlementConfirmed) or _input_spent(exc)):
                raise
            # The funding output is spent (a settlement): what the client may still refund is whatever pays
            # the channel address, e.g. the change of a v2 settlement (spec 8.4), found in the UTXO set.
            leftovers = rpc.unspent_outputs(params.funding_address.text)
            if not leftovers:
                raise ChannelStateError("the funding output is spent and no other output pays the channel "
                                        "address: nothing to refund") from None
            for out, amount in leftovers:
                refund(out, amount, rpc)
    finally:
        rpc.close()


def _input_spent(exc: RpcError) -> bool:
    text = exc.rpc_message.lower()
    return "missingorspent" in text or "missing-inputs" in text or "missing inputs" in text


@contextlib.contextmanager
def _following(ctx: _Context, channel: ClientChannel) -> Iterator[None]:
    """When the server says the channel is closed or closing (410; v1: 404), record it in the state file."""
    try:
        yield
    except ServerRejected as exc:
        if server_closed(exc, channel.family):
            _save(ctx, replace(channel, status="closed"))
            raise ChannelStateError(f"the server has closed this channel ({exc.status} {exc.server_message}); "
                                    "the state file now says closed") from None
        raise


def cmd_status(ctx: _Context) -> None:
    """Print the local state (without the private key); an open channel is first checked with the server."""
    state = ctx.load()
    if isinstance(state, ClientChannel) and state.status == "open" and not ctx.args.offline:
        state = _refresh(ctx, state)
    stage = "channel" if isinstance(state, ClientChannel) else "draft"
    validity = RefundValidity(state.params.exp_time, None).to_json()
    ctx.emit({"event": "status", **state.public_json(), "stage": stage, **validity})


def cmd_get(ctx: _Context) -> None:
    """GET a URL behind paychan-gateway, paying its 402s from the channel in --state (or a new debug one)."""
    a = ctx.args
    wallet = _gateway_wallet(ctx)
    auth = PayingAuth(wallet, Budget(per_request=a.max_per_request, total=a.budget))
    http = ctx.http()
    http.auth = auth
    if a.output:
        with open(a.output, "wb") as fh:
            written, last = get_ranges(http, a.url, fh.write)
        ctx.emit({"event": "get", "status": last.status_code, "bytes": written, "paid": auth.budget.spent})
    else:
        last = http.get(a.url)
        sys.stdout.buffer.write(last.content)
        sys.stdout.flush()
        written = len(last.content)
        sys.stderr.write(json.dumps({"event": "get", "status": last.status_code, "bytes": written,
                                     "paid": auth.budget.spent}) + "\n")
    if last.status_code >= 400:
        raise ClientError(f"GET {a.url}: {last.status_code} after paying {auth.budget.spent} sat")


def _gateway_wallet(ctx: _Context) -> ChannelWallet:
    """The v2.3 channel in --state, or (with --open-debug) a wallet that opens a debug-funded one there."""
    a = ctx.args
    network = Network.parse(a.network or "test")
    try:
        state = ctx.load()
    except StateFileError:
        if not a.open_debug:
            raise
        state = None
    if isinstance(state, ClientChannel):
        return ChannelWallet(state.network, channels=[state], on_update=lambda ch: _save(ctx, ch))
    if not a.open_debug:
        raise ChannelStateError("no open v2.3 channel in the state file: open one, or give --open-debug")
    if network is Network.LIVE:
        raise InvalidArgument("debug funding exists only on test and regtest (spec 9)")
    return ChannelWallet(network, funder=debug_funder, on_update=lambda ch: _save(ctx, ch))


def _refresh(ctx: _Context, channel: ClientChannel) -> ClientChannel:
    """Re-send the latest payment (value 0: spec 4.5) to learn the server's status; record a close."""
    with ctx.client(channel.network, origin(channel.channel_url)) as client:
        try:
            update = client.pay(channel, 0)
        except ServerRejected as exc:
            if not server_closed(exc, channel.family):
                return channel  # e.g. near expiry: the server takes no payment, the local state stands
            closed = replace(channel, status="closed")
            _save(ctx, closed)
            return closed
    if update.channel.status != channel.status:
        _save(ctx, update.channel)
    return update.channel



def _fail(message: str) -> int:
    sys.stderr.write("error: " + " ".join(message.split()) + "\n")
    return 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    common = _Parser(add_help=False)
    common.add_argument("--state", required=True, help="channel state file (JSON, mode 0600)")
    common.add_argument("--endpoint", help="server base URL, e.g. http://127.0.0.1:8080")
    common.add_argument("--network", choices=["live", "test", "regtest"])
    common.add_argument("--family", choices=["v1", "v2-seed", "v2", "v2.3.0", "v2.3"],
                        help="route family: v1, v2-seed (or v2), v2.3.0 (or v2.3)")
    common.add_argument("--timeout", type=float, default=10.0, help="HTTP timeout in seconds")
    rpc = _Parser(add_help=False)
    rpc.add_argument("--rpc-url", help="bitcoind JSON-RPC URL (optionally /wallet/<name>)")
    rpc.add_argument("--rpc-user")
    rpc.add_argument("--rpc-password")
    rpc.add_argument("--rpc-cookie", help="bitcoind .cookie file")

    parser = _Parser(prog="paychan-client", description="RBPCP payment channel client")
    parser.add_argument("--version", action="version", version=version_string("paychan-client"))
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("keygen", parents=[common], help="new client key and state file")
    p.add_argument("--refund-address")
    p.add_argument("--force", action="store_true", help="replace an existing state file")
    p.set_defaults(func=cmd_keygen)
    p = sub.add_parser("info", parents=[common], help="fetch and check funding info")
    p.add_argument("--exp-time", type=int)
    p.add_argument("--duration-hours", type=int)
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("fund", parents=[common, rpc], help="fund the channel address and record the outpoint")
    p.add_argument("--amount-sat", type=int)
    p.add_argument("--debug", action="store_true", help="record the server's debug-mode fake funding (spec 9)")
    p.add_argument("--txid")
    p.add_argument("--vout", type=int)
    p.add_argument("--value", type=int)
    p.add_argument("--open-value", type=int, help="the opening payment you will make (default: open price)")
    p.add_argument("--margin-seconds", type=int,
                   help="time until the open (default: the confirmations asked for at 10 min each plus one; "
                        "0 with --debug or --txid)")
    p.set_defaults(func=cmd_fund)
    p = sub.add_parser("wait-conf", parents=[common, rpc], help="wait for funding confirmations")
    p.add_argument("confirmations", type=int)
    p.add_argument("--wait-seconds", type=float, default=600.0)
    p.add_argument("--generate", action="store_true", help="regtest: mine the missing blocks")
    p.set_defaults(func=cmd_wait_conf)
    p = sub.add_parser("open", parents=[common], help="open the channel")
    p.add_argument("--open-value", type=int, help="value of the opening payment (default: open price)")
    p.add_argument("--change-address", help="v1 change address (default: the refund address)")
    p.set_defaults(func=cmd_open)
    p = sub.add_parser("pay", parents=[common], help="send a payment")
    p.add_argument("--amount", type=int, required=True)
    p.add_argument("--application-data", default="")
    p.set_defaults(func=cmd_pay)
    p = sub.add_parser("close", parents=[common], help="close the channel")
    p.add_argument("--refund-address")
    p.add_argument("--fee", type=int, default=0, help="v2.3: closing payment value (the settlement fee)")
    p.set_defaults(func=cmd_close)
    p = sub.add_parser("refund", parents=[common, rpc], help="build (and publish) the refund transaction")
    fee = p.add_mutually_exclusive_group()
    fee.add_argument("--fee", type=int)
    fee.add_argument("--fee-rate", type=int, help="sat/byte (default 1)")
    p.add_argument("--refund-address")
    p.add_argument("--txid", help="refund this output paying the channel address instead of the funding")
    p.add_argument("--vout", type=int)
    p.add_argument("--value", type=int, help="value of --txid/--vout in satoshis")
    p.set_defaults(func=cmd_refund)
    p = sub.add_parser("status", parents=[common], help="show the channel state (checked with the server)")
    p.add_argument("--offline", action="store_true", help="only the local state file")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("get", parents=[common], help="GET a URL behind paychan-gateway, paying its 402 answers")
    p.add_argument("url")
    p.add_argument("--output", "-o", help="write the body here (fetched in paid ranges when metered)")
    p.add_argument("--max-per-request", type=int, help="pay at most this much for one request")
    p.add_argument("--budget", type=int, help="pay at most this much in total (an opening payment included)")
    p.add_argument("--open-debug", action="store_true",
                   help="no channel yet: open one with the debug-mode fake funding (spec 9; test networks)")
    p.set_defaults(func=cmd_get)
    return parser


def main(argv: Sequence[str] | None = None, *, transport: httpx.BaseTransport | None = None) -> int:
    """Run one command; errors give exit code 2 and one line on stderr."""
    try:
        args = build_parser().parse_args(argv)
        func: Callable[[_Context], None] = args.func
        ctx = _Context(args, transport)
        try:
            func(ctx)
        finally:
            ctx.release()
    except _UsageError as exc:
        return _fail(str(exc))
    except (ClientError, PaychanError) as exc:
        return _fail(exc.message)
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
