"""The domain's adapters wired together once: ChanStore client, SigningService client, blockchain, Settler,
PayChanService. Used by PayChanServer's app and by paychan-gateway (one payment path for both)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from chan_store.client import ChanStoreClient
from paychan_common.address import Address
from paychan_common.errors import ServiceUnavailable
from paychan_common.keys import PublicKey
from paychan_common.settlement import MAX_SETTLEMENT_SIZE
from paychan_runtime.client import InternalClient
from paychan_runtime.config import ConfigError, load_or_create_secret
from paychan_runtime.faults import crash_point_from_env

from .adapters.chan_store_pool import FailoverChanStore
from .adapters.debug_chain import DebugChain
from .adapters.signer import SignerClient
from .config import ServerConfig
from .domain.clock import Clock
from .domain.hooks import PaymentHooks, SettlementHooks
from .domain.ports import Blockchain, SignerPolicy
from .domain.service import PayChanService
from .domain.settler import Settler

__all__ = ["ServiceStack", "check_fee_caps", "make_blockchain", "make_chan_store", "service_stack"]

log = logging.getLogger("paychan.server")


def make_blockchain(cfg: ServerConfig) -> Blockchain:
    """The debug chain (documented debug mode) or the bitcoind adapter."""
    if cfg.debug.enable:
        return DebugChain(cfg.settlement.fee_rate_sat_per_byte)
    from .adapters.bitcoind import BitcoindChain

    return BitcoindChain(cfg.bitcoin, cfg.settlement)


def make_chan_store(cfg: ServerConfig, token: str) -> ChanStoreClient | FailoverChanStore:
    """The ChanStore client, or a failover set over several instances of one PostgreSQL-backed store."""
    cs = cfg.chan_store
    clients = [ChanStoreClient(url, token, unix_path=cs.unix_path, pool_size=cs.pool_size) for url in cs.urls]
    return clients[0] if len(clients) == 1 else FailoverChanStore(clients, cs.urls)


async def _wait_signer(signer: SignerClient, cfg: ServerConfig, wait_s: float = 60.0) -> tuple[PublicKey, Address]:
    """Fetch the server key, retrying every 0.1 s until the SigningService answers (spec 10.3)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        try:
            return await signer.info(cfg.bitcoin.net)
        except ServiceUnavailable:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.1)


def check_fee_caps(cfg: ServerConfig, signer: SignerPolicy) -> None:
    """Refuse to start when a fee this server may ask for can exceed the SigningService's max_fee (spec 8.6):
    such a settlement would never be signed and its channel would stay closing until the client refunds."""
    s = cfg.settlement
    own = s.max_fee_rate_sat_per_byte * MAX_SETTLEMENT_SIZE
    problem = ""
    if own > signer.max_fee:
        problem = (f"settlement.max_fee_rate_sat_per_byte: {s.max_fee_rate_sat_per_byte} sat/byte x "
                   f"{MAX_SETTLEMENT_SIZE} bytes (the largest settlement) = {own} sat exceeds the "
                   f"SigningService's max_fee of {signer.max_fee} sat (spec 8.6)")
    elif s.bump_max_fee > signer.max_fee:
        problem = (f"settlement.bump_max_fee: {s.bump_max_fee} sat exceeds the SigningService's max_fee "
                   f"of {signer.max_fee} sat (spec 8.6)")
    if problem:
        log.critical("refusing to start: %s", problem)
        raise ConfigError(problem)
    log.info("fee caps within the SigningService's max_fee %d sat (dust limit %d)", signer.max_fee,
             signer.dust_limit)


@dataclass(frozen=True, slots=True)
class ServiceStack:
    """PayChanService and the adapters it runs on."""

    service: PayChanService
    settler: Settler
    store: ChanStoreClient | FailoverChanStore
    chain: Blockchain
    server_pubkey: PublicKey


@contextlib.asynccontextmanager
async def service_stack(cfg: ServerConfig, hooks: PaymentHooks | None = None,
                        settlement_hooks: SettlementHooks | None = None) -> AsyncIterator[ServiceStack]:
    """Open the adapters, check the chain, fetch the server key and check the fee caps against the signer's
    (spec 10.3, 10.4, 8.6); close them on exit."""
    token = load_or_create_secret(Path(cfg.auth.token_file))
    store = make_chan_store(cfg, token)
    ss = cfg.signing_service
    signer = SignerClient(InternalClient(ss.url, token, unix_path=ss.unix_path, pool_size=ss.pool_size,
                                         timeout=ss.timeout_seconds, name="SigningService"))
    chain = make_blockchain(cfg)
    try:
        await chain.startup_check()  # spec 10.4 self-test: a node on another chain is fatal
        server_pk, destination = await _wait_signer(signer, cfg)
        signer_policy = await signer.policy()
        check_fee_caps(cfg, signer_policy)
        if isinstance(store, FailoverChanStore):
            with contextlib.suppress(ServiceUnavailable):  # instances down now are checked before first use
                await store.verify()
        clock = Clock(cfg.debug.time_offset_seconds)
        settler = Settler(store, signer, chain, destination.script_pubkey, cfg.channel.policy(), cfg.settlement,
                          clock, signer_policy=signer_policy, hooks=settlement_hooks, crash=crash_point_from_env())
        svc = PayChanService(cfg, store, chain, settler, server_pk, clock, hooks=hooks)
        yield ServiceStack(svc, settler, store, chain, server_pk)
    finally:
        await asyncio.gather(store.close(), signer.close(), chain.close())
