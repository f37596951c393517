"""The PostgreSQL channel engine: the database, not process memory, decides every write.

Several ChanStore processes may serve one database at once; each is a stateless front that keeps no
channel state of its own. A batch of payments is one transaction: the channels' rows are locked with
`SELECT ... FOR UPDATE` in outpoint order (so two batches never deadlock), the rules of spec 7.3 run on the
locked states, and every new state is written by one `UPDATE ... FROM unnest(...)`; the commit is one WAL
flush, and nothing is acknowledged before it returned. Concurrent calls within one process are grouped
into one transaction (group commit). A compare-and-set is one conditional `UPDATE ... WHERE digest = $old`.

While the database is unreachable every call answers ServiceUnavailable (503) and the pool reconnects by
itself once it is back: a failed transaction was rolled back, so nothing it carried was acknowledged.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from chan_store.contract import (
    MAX_PAYMENTS,
    ChannelExistsAt,
    ChannelPage,
    CommitStats,
    PaymentApplied,
    PaymentItem,
    PaymentResult,
    StateConflict,
    check_list_args,
    check_payments_args,
)
from chan_store.pg_schema import migrate
from chan_store.storage import StorageError
from chan_store.store import serialize_state
from paychan_common.errors import ChannelNotFound, InvalidInput, PaychanError, ServiceUnavailable
from paychan_common.rules import apply_payment
from paychan_common.state import ChannelState, Status
from paychan_common.tx import OutPoint

__all__ = ["COLUMNS", "PostgresChannelStore", "row_values"]

log = logging.getLogger("paychan.chanstore")

COLUMNS = ("outpoint", "family", "status", "client_pubkey", "exp_time", "funding_value", "change_value",
            "payment_count", "open_time", "last_payment_time", "settlement_txid", "settlement_fee", "state",
            "digest")
_TYPES = ("bytea", "smallint", "smallint", "bytea", "bigint", "bigint", "bigint", "bigint", "bigint", "bigint",
          "text", "bigint", "bytea", "bytea")
# The SQL below is built from the constant column names only; every value travels as a bound parameter.
_INSERT = "INSERT INTO channels ({}) VALUES ({})".format(  # noqa: S608
    ", ".join(COLUMNS), ", ".join(f"${i}" for i in range(1, len(COLUMNS) + 1)))
_UPDATE_MANY = "UPDATE channels AS c SET {}, updated_at = now() FROM unnest({}) AS u({}) WHERE {}".format(  # noqa: S608
    ", ".join(f"{col} = u.{col}" for col in COLUMNS[1:]),
    ", ".join(f"${i}::{t}[]" for i, t in enumerate(_TYPES, 1)), ", ".join(COLUMNS), "c.outpoint = u.outpoint")
_CAS = (  # noqa: S608
    "WITH old AS (SELECT outpoint, status FROM channels WHERE outpoint = $1 AND digest = ${n} FOR UPDATE) "
    "UPDATE channels AS c SET {sets}, updated_at = now() FROM old "
    "WHERE c.outpoint = old.outpoint AND c.client_pubkey = $4 AND c.exp_time = $5 "
    "RETURNING c.outpoint, old.status AS old_status").format(
    n=len(COLUMNS) + 1, sets=", ".join(f"{col} = ${i}" for i, col in enumerate(COLUMNS[1:], 2)))
_DB_ERRORS = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError,
              asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError)


def row_values(state: ChannelState, data: bytes | None = None) -> tuple[Any, ...]:
    """The column values of a state's row (in `COLUMNS` order)."""
    data = serialize_state(state) if data is None else data
    return (state.outpoint.serialize(), state.family.value, state.status.value, state.client_pubkey, state.exp_time,
            state.funding_value, state.change_value, state.payment_count, state.open_time,
            state.last_payment_time, state.settlement_txid, state.settlement_fee, data,
            hashlib.sha256(data).digest())


def _parse(data: bytes) -> ChannelState:
    return ChannelState.parse(bytes(data))


@dataclass
class _Pending:
    items: Sequence[PaymentItem]
    now: int
    done: asyncio.Future[list[PaymentResult]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())


class PostgresChannelStore:
    """ChannelEngine over PostgreSQL (asyncpg pool); `await open()` before use, `await close()` after."""

    def __init__(self, dsn: str, *, password: str | None = None, pool_size: int = 8,
                 command_timeout: float = 10.0) -> None:
        self._dsn = dsn
        self._password = password
        self._pool_size = pool_size
        self._timeout = command_timeout
        self._pool: asyncpg.Pool | None = None
        self._queue: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._counts: dict[str, int] = {status.label: 0 for status in Status}
        self._stats = CommitStats(0, 0, 0, 0, 0.0, 0.0)
        self.identity = "postgres:unopened"
        """Which database this is (cluster system identifier and database name), for GET /health."""

    # ------------------------------------------------------------------ life

    async def open(self, *, apply_migrations: bool = True) -> None:
        """Connect (the database must be reachable at start) and bring the schema up to date."""
        try:
            self._pool = await asyncpg.create_pool(self._dsn, password=self._password, min_size=1,
                                                   max_size=self._pool_size, command_timeout=self._timeout)
            async with self._pool.acquire() as conn:
                if apply_migrations:
                    await migrate(conn)
                row = await conn.fetchrow("SELECT system_identifier::text AS sysid, current_database() AS db "
                                          "FROM pg_control_system()")
        except (*_DB_ERRORS, asyncpg.PostgresError, RuntimeError) as exc:
            if self._pool is not None:
                await self._pool.close()
                self._pool = None
            raise StorageError(f"cannot open the PostgreSQL store: {type(exc).__name__}: {exc}") from None
        self.identity = f"postgres:{row['sysid']}/{row['db']}"
        await self.refresh_counts()
        log.info("PostgreSQL engine ready: %s", self._counts)

    async def close(self) -> None:
        """Finish the queued payments, then close the pool."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def _require_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise ServiceUnavailable("channel store is not open")
        return self._pool

    # ------------------------------------------------------------------ introspection

    @property
    def failed(self) -> bool:
        """Never: a database outage is answered 503 and recovered from without a restart."""
        return False

    def counts(self) -> dict[str, int]:
        """Channels by status, as of the last refresh (start, GET /stats)."""
        return dict(self._counts)

    def memory(self) -> dict[str, int]:
        """This engine keeps no channel in memory."""
        return {"live": self._counts["open"] + self._counts["closing"], "cached": 0}

    def storage_stats(self) -> CommitStats:
        """Transactions committed, the payments and bytes they carried, and the time spent in them."""
        return self._stats

    async def refresh_counts(self) -> dict[str, int]:
        """Count the channels by status in the database."""
        rows = await self._fetch("SELECT status, count(*) AS n FROM channels GROUP BY status")
        counts = {status.label: 0 for status in Status}
        for row in rows:
            counts[Status(row["status"]).label] = int(row["n"])
        self._counts = counts
        return counts

    # ------------------------------------------------------------------ reads

    async def get(self, outpoint: OutPoint) -> ChannelState | None:
        """The channel's committed state, or None."""
        row = await self._fetchrow("SELECT state FROM channels WHERE outpoint = $1", outpoint.serialize())
        return None if row is None else _parse(row["state"])

    async def list(self, *, status: Status | None = None, client_pubkey: bytes | None = None,
                   expiring_before: int | None = None, after: OutPoint | None = None,
                   limit: int = 100) -> ChannelPage:
        """One page, in the order the LevelDB engine's indexes give: by outpoint within a client key, by
        (exp_time, outpoint) within a status, else by outpoint; `after` is the previous page's last outpoint."""
        check_list_args(status, client_pubkey, expiring_before, limit)
        where: builtins.list[str] = []
        args: builtins.list[Any] = []

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if status is not None:
            where.append(f"status = {arg(status.value)}")
        if client_pubkey is not None:
            where.append(f"client_pubkey = {arg(client_pubkey)}")
        if expiring_before is not None:
            where.append(f"exp_time < {arg(expiring_before)}")
        by_expiry = client_pubkey is None and status is not None
        if after is not None:
            op = after.serialize()
            if by_expiry:
                cursor = await self._fetchrow("SELECT exp_time FROM channels WHERE outpoint = $1", op)
                if cursor is None:
                    raise InvalidInput("unknown pagination cursor `after`")
                where.append(f"(exp_time, outpoint) > ({arg(cursor['exp_time'])}, {arg(op)})")
            else:
                where.append(f"outpoint > {arg(op)}")
        order = "exp_time, outpoint" if by_expiry else "outpoint"
        sql = (f"SELECT state FROM channels {'WHERE ' + ' AND '.join(where) if where else ''} "  # noqa: S608
               f"ORDER BY {order} LIMIT {arg(limit)}")  # conditions from constants; values are parameters
        rows = await self._fetch(sql, *args)
        states = tuple(_parse(row["state"]) for row in rows)
        return ChannelPage(states, states[-1].outpoint if len(states) == limit else None)

    # ------------------------------------------------------------------ writes

    async def create(self, state: ChannelState) -> ChannelState:
        """INSERT the new open channel; the primary key and the one-open-channel-per-key index decide."""
        if state.status is not Status.OPEN:
            raise InvalidInput("a new channel must be open")
        if len(state.client_pubkey) != 33:
            raise InvalidInput("client_pubkey must be 33 bytes")
        pool = self._require_pool()
        try:
            async with pool.acquire() as conn:
                try:
                    await conn.execute(_INSERT, *row_values(state))
                except asyncpg.UniqueViolationError as exc:
                    raise await self._exists(conn, state, exc.constraint_name or "") from None
        except _DB_ERRORS as exc:
            raise self._unavailable(exc) from None
        self._stats = _add_commit(self._stats, 1, 0.0)
        self._count(None, state.status)
        return state

    def _count(self, old: Status | None, new: Status) -> None:
        """Keep this process's counts current between refreshes (other instances' writes show at refresh)."""
        if old is not None:
            self._counts[old.label] = max(0, self._counts[old.label] - 1)
        self._counts[new.label] += 1

    async def _exists(self, conn: asyncpg.Connection, state: ChannelState, constraint: str) -> ChannelExistsAt:
        if constraint != "channels_one_open_per_client":
            return ChannelExistsAt("channel exists: this funding outpoint is already stored", state.outpoint)
        other = await conn.fetchval("SELECT outpoint FROM channels WHERE client_pubkey = $1 AND status = 1",
                                    state.client_pubkey)
        return ChannelExistsAt("channel exists: an open channel for this client key exists",
                               None if other is None else OutPoint.parse(bytes(other)), code="open_channel_exists")

    async def apply_payments(self, items: Sequence[PaymentItem], now: int) -> builtins.list[PaymentResult]:
        """Queue the payments for the next transaction; answer once it committed (group commit)."""
        self._require_pool()
        check_payments_args(items, now)
        if not items:
            return []
        pending = _Pending(items, now)
        self._queue.append(pending)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush(), name="chanstore-pg-flush")
        return await asyncio.shield(pending.done)

    async def _flush(self) -> None:
        """Commit the queued calls, one transaction per round, until the queue is empty."""
        while self._queue:
            group, self._queue = self._queue[:MAX_PAYMENTS], self._queue[MAX_PAYMENTS:]
            try:
                results = await self._commit_payments(group)
            except _DB_ERRORS as exc:
                error = self._unavailable(exc)
                for pending in group:
                    if not pending.done.done():
                        pending.done.set_exception(error)
                continue
            except BaseException as exc:  # a bug: fail these calls, keep serving the others
                log.exception("payment transaction failed")
                for pending in group:
                    if not pending.done.done():
                        pending.done.set_exception(ServiceUnavailable("channel store write failed"))
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for pending, result in zip(group, results, strict=True):
                if not pending.done.done():
                    pending.done.set_result(result)

    async def _commit_payments(self, group: Sequence[_Pending]) -> builtins.list[builtins.list[PaymentResult]]:
        ops = sorted({item.outpoint.serialize() for pending in group for item in pending.items})
        started = time.perf_counter()
        async with self._require_pool().acquire() as conn, conn.transaction():
            rows = await conn.fetch("SELECT outpoint, state FROM channels WHERE outpoint = ANY($1::bytea[]) "
                                    "ORDER BY outpoint FOR UPDATE", ops)
            current = {bytes(row["outpoint"]): _parse(row["state"]) for row in rows}
            changed: dict[bytes, ChannelState] = {}
            results: builtins.list[builtins.list[PaymentResult]] = []
            for pending in group:
                out: builtins.list[PaymentResult] = []
                for item in pending.items:
                    op = item.outpoint.serialize()
                    state = current.get(op)
                    try:
                        if state is None:
                            raise ChannelNotFound(f"no channel with funding outpoint {item.outpoint}")
                        when = pending.now if item.now is None else item.now
                        accepted = apply_payment(state, item.change_value, item.der, item.sighash, when)
                    except PaychanError as err:
                        out.append(err)
                        continue
                    current[op] = changed[op] = accepted.state
                    out.append(PaymentApplied(accepted.value_received, accepted.state.change_value,
                                              accepted.state.status))
                results.append(out)
            if changed:
                columns = list(zip(*(row_values(state) for state in changed.values()), strict=True))
                await conn.execute(_UPDATE_MANY, *columns)
        self._stats = _add_commit(self._stats, len(group), time.perf_counter() - started)
        return results

    async def compare_and_set(self, expected_sha256: bytes, new_state: ChannelState) -> ChannelState:
        """One conditional UPDATE; on no match, the current row says why (conflict, unknown, identity)."""
        if type(expected_sha256) is not bytes or len(expected_sha256) != 32:
            raise InvalidInput("expected must be a 32-byte SHA256")
        values = row_values(new_state)
        op = values[0]
        pool = self._require_pool()
        try:
            async with pool.acquire() as conn:
                try:
                    done, old_status = await self._cas(conn, values, expected_sha256)
                except asyncpg.UniqueViolationError:
                    current = await conn.fetchval("SELECT state FROM channels WHERE outpoint = $1", op)
                    raise StateConflict("state conflict: another open channel of this client key exists",
                                        None if current is None else _parse(current)) from None
                if done is not None:
                    self._stats = _add_commit(self._stats, 1, 0.0)
                    self._count(Status(old_status), new_state.status)
                    return new_state
                row = await conn.fetchrow("SELECT state, digest FROM channels WHERE outpoint = $1", op)
        except _DB_ERRORS as exc:
            raise self._unavailable(exc) from None
        if row is None:
            raise ChannelNotFound(f"no channel with funding outpoint {new_state.outpoint}")
        current_state = _parse(row["state"])
        if bytes(row["digest"]) != expected_sha256:
            raise StateConflict("state conflict: the channel changed since it was read", current_state)
        raise InvalidInput("compare_and_set cannot change a channel's client key or expiry")

    @staticmethod
    async def _cas(conn: asyncpg.Connection, values: tuple[Any, ...], expected: bytes) -> tuple[Any, int]:
        """The conditional UPDATE, returning (outpoint or None, the status it replaced)."""
        row = await conn.fetchrow(_CAS, *values, expected)
        return (None, 0) if row is None else (row["outpoint"], row["old_status"])

    # ------------------------------------------------------------------ plumbing

    async def _fetch(self, sql: str, *args: Any) -> builtins.list[asyncpg.Record]:
        try:
            async with self._require_pool().acquire() as conn:
                return list(await conn.fetch(sql, *args))
        except _DB_ERRORS as exc:
            raise self._unavailable(exc) from None

    async def _fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        rows = await self._fetch(sql, *args)
        return rows[0] if rows else None

    @staticmethod
    def _unavailable(exc: BaseException) -> ServiceUnavailable:
        log.warning("PostgreSQL unavailable: %s", type(exc).__name__)
        return ServiceUnavailable("channel store database unavailable")


def _add_commit(stats: CommitStats, calls: int, seconds: float) -> CommitStats:
    """The counters after one more committed transaction carrying `calls` write calls."""
    return CommitStats(commits=stats.commits + 1, writes=stats.writes + calls, last_batch_size=calls,
                       max_batch_size=max(stats.max_batch_size, calls),
                       total_sync_seconds=stats.total_sync_seconds + seconds, last_sync_seconds=seconds)
