"""ChannelStore: the ChanStore core (no HTTP). Owns channel states; atomic updates; durable.

Memory holds the states written but not yet durable, and a bounded LRU of the most recently used open
and closing channels (serialized and parsed); any other state is read from storage when needed (spec 12
item 11: memory is bounded by the cache size, not by the number of channels; start-up counts the status
index, then checks both indexes against every stored state in one sequential pass, keeping none: see
`ChannelStore.load`). States are keyed by the 36-byte outpoint.

Every mutation checks and updates memory synchronously, then hands ONE batch to the storage; its caller
is answered only once that batch is durable. Memory may run ahead of disk, never the other way: a read
that sees a not-yet-durable state waits for the write carrying it. A failed write leaves memory ahead of
disk, so the store fail-stops: it logs CRITICAL, calls `on_fatal` (by default: end the process with
status 70, to be restarted and reload from disk) and refuses every further request.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import logging
import os
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence

from chan_store import contract, keys
from chan_store.storage import Storage, StorageClosedError, StorageError, WriteBatch
from paychan_common.errors import ChannelNotFound, InvalidInput, PaychanError, ServiceUnavailable
from paychan_common.rules import apply_payment
from paychan_common.state import ChannelState, Status
from paychan_common.tx import OutPoint

__all__ = ["DEFAULT_CACHE_SIZE", "EXIT_FAIL_STOP", "ChannelStore", "FatalHandler", "exit_process", "serialize_state"]

log = logging.getLogger("paychan.chanstore")

DEFAULT_CACHE_SIZE = 50_000
EXIT_FAIL_STOP = 70  # EX_SOFTWARE

FatalHandler = Callable[[BaseException], None]
_Commit = asyncio.Future[None]
_LIVE = (Status.OPEN, Status.CLOSING)
_CHECK_SLICE = 2000  # records the background start-up check reads between two yields to the event loop


def _commit_error(commit: _Commit) -> Exception | None:
    """What waiting for a finished commit raises (ServiceUnavailable for a failed or cancelled write), or
    None when its batch is durable."""
    if commit.cancelled():
        return ServiceUnavailable("channel store write was cancelled; the store stops")
    exc = commit.exception()
    if exc is None:
        return None
    if isinstance(exc, StorageError):
        error = ServiceUnavailable("channel store write failed; the store stops")
        error.__cause__ = exc
        return error
    return exc if isinstance(exc, Exception) else ServiceUnavailable(f"channel store write ended: {exc!r}")


def exit_process(exc: BaseException) -> None:
    """Fail-stop: flush the log handlers and end the process at once (memory is ahead of disk)."""
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(EXIT_FAIL_STOP)


class _Staged:
    """The writes of one mutation: each channel's state as the batch finds it on disk, and its new state."""

    __slots__ = ("_new", "_old")

    def __init__(self) -> None:
        self._old: dict[bytes, bytes | None] = {}
        self._new: dict[bytes, bytes] = {}

    def __bool__(self) -> bool:
        return bool(self._new)

    @property
    def outpoints(self) -> tuple[bytes, ...]:
        """The channels written."""
        return tuple(self._new)

    def stage(self, outpoint: bytes, old: bytes | None, new: bytes) -> None:
        """Record a write; a second write of a channel keeps the first `old`."""
        self._old.setdefault(outpoint, old)
        self._new[outpoint] = new

    def batch(self) -> WriteBatch:
        """Put every new state; move each index entry whose status, expiry or key changed."""
        puts: list[tuple[bytes, bytes]] = []
        deletes: list[bytes] = []
        for outpoint, new in self._new.items():
            puts.append((keys.channel_key(outpoint), new))
            old = self._old[outpoint]
            if old is not None and _same_index(old, new):
                continue  # a payment: status, expiry and key unchanged, so are the index entries
            new_index = keys.index_keys(outpoint, new)
            old_index = keys.index_keys(outpoint, old) if old is not None else ()
            deletes.extend(key for key in old_index if key not in new_index)
            puts.extend((key, b"") for key in new_index if key not in old_index)
        return WriteBatch(puts=tuple(puts), deletes=tuple(deletes))


def _same_index(old: bytes, new: bytes) -> bool:
    """True if two serialized states have the same index entries (status, client key, expiry)."""
    return keys.raw_index_fields(old) == keys.raw_index_fields(new)


class _DigestMismatch(StorageError):
    """The start-up check's sums differ: some index entry is missing, extra or wrong (not yet located)."""


def serialize_state(state: ChannelState) -> bytes:
    """The state's record; InvalidInput (not a crash) when a field does not fit its encoding."""
    try:
        return state.serialize()
    except (struct.error, OverflowError, AttributeError, TypeError) as exc:
        raise InvalidInput(f"channel state field out of range: {exc}") from None


def _serialize_successor(state: ChannelState, previous: ChannelState, data: bytes) -> bytes:
    """`serialize_state(state)`, from `data` (the record of `previous`) when `state` is its payment successor."""
    try:
        return state.serialize_after(previous, data)
    except (struct.error, OverflowError, AttributeError, TypeError) as exc:
        raise InvalidInput(f"channel state field out of range: {exc}") from None


def _parse_stored(data: bytes) -> ChannelState:
    try:
        return ChannelState.parse(data)
    except InvalidInput as exc:
        raise StorageError(f"stored channel state is corrupt: {exc.message}") from None


class ChannelStore:
    """The channel states, over a `Storage`; call `load()` once before use, then use from one event loop."""

    def __init__(self, storage: Storage, *, cache_size: int = DEFAULT_CACHE_SIZE,
                 on_fatal: FatalHandler = exit_process) -> None:
        if cache_size < 1:
            raise ValueError("cache_size must be >= 1")
        self._storage = storage
        self._cache_size = cache_size
        self._on_fatal = on_fatal
        self._dirty: dict[bytes, bytes] = {}  # outpoint -> latest state, while its write is not yet durable
        self._cache: OrderedDict[bytes, tuple[bytes, ChannelState]] = OrderedDict()  # LRU of open/closing
        self._creating: dict[bytes, bytes] = {}  # client key -> outpoint, creates not yet durable
        self._pending: dict[bytes, _Commit] = {}  # outpoint -> latest write of it not yet durable
        self._counts: dict[Status, int] = dict.fromkeys(Status, 0)
        self._failure: BaseException | None = None
        self._check_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ start-up and introspection

    def load(self, *, background_check: bool = False) -> None:
        """Count the channels by status (from the status index), then check both indexes against every
        stored state: now, or with `background_check` in slices on the running event loop after load()
        returned, so that the store serves meanwhile (states are not kept: they are read, parsed and cached
        when first used).

        The check reads ONE snapshot, taken here, in key order: every state, the client-key index, the
        status index. It sums a hash of each index entry the states call for and of each entry found (a
        multiset digest: nothing is looked up, so the reads are sequential) and compares the sums, the
        numbers of entries and the counts by status. A failure raises StorageError now; in the background it
        is logged CRITICAL and the store fail-stops (`on_fatal`; every request refused), as after a failed
        write: a store whose index disagrees with its states must not serve once that is known."""
        started = time.perf_counter()
        counts = {status: sum(1 for _ in self._storage.scan(keys.status_prefix(status))) for status in Status}
        self._counts = dict(counts)
        self._dirty.clear()
        self._cache.clear()
        log.info("found %d open, %d closing and %d closed channels in %.3f s", counts[Status.OPEN],
                 counts[Status.CLOSING], counts[Status.CLOSED], time.perf_counter() - started)
        steps = self._check_steps(self._storage.scan(b""), {status.value: n for status, n in counts.items()})
        if background_check:
            self._check_task = asyncio.get_running_loop().create_task(self._check_in_background(steps),
                                                                      name="chanstore-start-check")
            return
        try:
            for _ in steps:
                pass
        except _DigestMismatch:
            self._locate_index_fault()  # no write since the snapshot: name the channel at fault
            raise

    @property
    def checking(self) -> bool:
        """True while the background start-up check runs."""
        task = self._check_task
        return task is not None and not task.done()

    async def stop_check(self) -> None:
        """Cancel a background start-up check still running (before the storage closes)."""
        task = self._check_task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _locate_index_fault(self) -> None:
        """The digests disagree: find the channel at fault by lookups (slow; only on a corrupt store)."""
        for key, data in self._storage.scan(keys.CHANNEL):
            for entry in keys.index_keys(key[1:], data):
                if self._storage.get(entry) is None:
                    raise StorageError(f"index entry missing for channel {key[1:].hex()}")
        for prefix in (keys.CLIENT, keys.STATUS):
            for key, _ in self._storage.scan(prefix):
                outpoint = keys.outpoint_of_index_key(key)
                stored = self._storage.get(keys.channel_key(outpoint))
                if stored is None:
                    raise StorageError(f"index names a missing channel {outpoint.hex()}")
                if key not in keys.index_keys(outpoint, stored):
                    raise StorageError(f"index disagrees with the state of channel {outpoint.hex()}")

    async def _check_in_background(self, steps: Generator[None, None, None]) -> None:
        started = time.perf_counter()
        try:
            for _ in steps:
                await asyncio.sleep(0)  # let requests through between slices
        except StorageClosedError:
            return  # shutting down
        except Exception as exc:  # noqa: BLE001 - a fault found (the store changed since: lookups could mislead), or
            # a check that could not finish: either way the store is not known to be sound, so it stops
            if self._failure is None:
                self._failure = exc
                log.critical("start-up check: %s; fail-stop (run `python -m chan_store.verify DIR` on the stopped "
                             "store to list every problem)", exc)
                self._on_fatal(exc)
            return
        finally:
            steps.close()  # releases the snapshot's iterator now, not when collected
        log.info("start-up check passed: both indexes agree with every stored state (%.1f s in the background)",
                 time.perf_counter() - started)

    def _check_steps(self, records: Iterator[tuple[bytes, bytes]], counts: dict[int, int],
                     slice_size: int = _CHECK_SLICE) -> Generator[None, None, None]:
        """The start-up check over `records` (a scan of every key), yielding every `slice_size` records;
        StorageError on the first fault found. See `load`."""
        started = time.perf_counter()
        by_byte = dict.fromkeys(counts, 0)
        expected = found = states = entries = 0
        raw_index_keys = keys.raw_index_keys
        channel, client, status = keys.CHANNEL[0], keys.CLIENT[0], keys.STATUS[0]
        seen = 0
        for key, data in records:
            space = key[0]
            if space == channel:
                pair = raw_index_keys(key[1:], data)
                if pair is None:  # a full parse costs ~10 us a channel: the fields the indexes hold are
                    # checked; the rest when the state is first used (a corrupt one then fails as an internal error)
                    raise StorageError(f"stored state of channel {key[1:].hex()} is corrupt or not its own")
                by_byte[data[2]] += 1
                expected += hash(pair[0]) + hash(pair[1])
                states += 1
            elif space in (client, status):
                found += hash(key)
                entries += 1
            seen += 1
            if seen == slice_size:
                seen = 0
                yield
        if by_byte != counts:
            raise _DigestMismatch(f"the stored states count {by_byte} by status, the status index {counts}")
        if found != expected or entries != 2 * states:
            raise _DigestMismatch(f"the indexes disagree with the stored states ({entries} index entries for "
                                  f"{states} states, or an entry differs)")
        log.debug("checked %d states and %d index entries in %.3f s", states, entries, time.perf_counter() - started)

    def counts(self) -> dict[str, int]:
        """Number of channels by status label (including writes not yet durable)."""
        return {status.label: self._counts[status] for status in Status}

    def memory(self) -> dict[str, int]:
        """Open and closing channels (on disk), and how many of them are cached in memory."""
        return {"live": self._counts[Status.OPEN] + self._counts[Status.CLOSING], "cached": len(self._cache)}

    def storage_stats(self) -> contract.CommitStats:
        """The storage's commit counters."""
        return self._storage.stats()

    @property
    def failed(self) -> bool:
        """True once a write failed: the store refuses every request until restarted."""
        return self._failure is not None

    # ------------------------------------------------------------------ reads

    async def get(self, outpoint: OutPoint) -> ChannelState | None:
        """The channel's state (once durable), or None."""
        self._check_usable()
        op = outpoint.serialize()
        found = self._lookup(op)
        await self._durable_ops((op,))
        return None if found is None else found[1]

    async def list(self, *, status: Status | None = None, client_pubkey: bytes | None = None,
                   expiring_before: int | None = None, after: OutPoint | None = None,
                   limit: int = 100) -> contract.ChannelPage:
        """One page of states: by client index if client_pubkey, else by status/expiry if status, else by
        outpoint; `after` is the last outpoint of the previous page (exclusive)."""
        self._check_usable()
        contract.check_list_args(status, client_pubkey, expiring_before, limit)
        prefix, start = self._list_range(status, client_pubkey, after)
        by_expiry = client_pubkey is None and status is not None
        found: list[ChannelState] = []
        for key, value in self._storage.scan(prefix, start):
            if by_expiry and expiring_before is not None and int.from_bytes(key[2:6], "big") >= expiring_before:
                break
            op = keys.outpoint_of_index_key(key)
            entry = self._lookup(op, value if prefix == keys.CHANNEL else None)
            if entry is None:
                continue
            state = entry[1]
            if status is not None and state.status is not status:
                continue  # changed since; it will be found under its new status once durable
            if expiring_before is not None and state.exp_time >= expiring_before:
                continue
            found.append(state)
            if len(found) == limit:
                break
        await self._durable_ops(state.outpoint.serialize() for state in found)
        cursor = found[-1].outpoint if len(found) == limit else None
        return contract.ChannelPage(tuple(found), cursor)

    def _list_range(self, status: Status | None, client_pubkey: bytes | None,
                    after: OutPoint | None) -> tuple[bytes, bytes | None]:
        op = None if after is None else after.serialize()
        if client_pubkey is not None:
            start = None if op is None else keys.key_after(keys.client_key(client_pubkey, op))
            return keys.client_prefix(client_pubkey), start
        if status is not None:
            if op is None:
                return keys.status_prefix(status), None
            cursor = self._lookup(op)
            if cursor is None:
                raise InvalidInput("unknown pagination cursor `after`")
            return keys.status_prefix(status), keys.key_after(keys.status_key(status, cursor[1].exp_time, op))
        return keys.CHANNEL, None if op is None else keys.key_after(keys.channel_key(op))

    # ------------------------------------------------------------------ mutations

    async def create(self, state: ChannelState) -> ChannelState:
        """Store a new open channel; ChannelExistsAt if the outpoint is known or the key has an open channel."""
        self._check_usable()
        if state.status is not Status.OPEN:
            raise InvalidInput("a new channel must be open")
        if len(state.client_pubkey) != keys.PUBKEY_LEN:
            raise InvalidInput("client_pubkey must be 33 bytes")
        op = state.outpoint.serialize()
        pubkey = state.client_pubkey
        if op in self._dirty or op in self._cache or self._storage.get(keys.channel_key(op)) is not None:
            raise contract.ChannelExistsAt("channel exists: this funding outpoint is already stored", state.outpoint)
        other = self._open_channel_of(pubkey)
        if other is not None:
            raise contract.ChannelExistsAt("channel exists: an open channel for this client key exists",
                                  OutPoint.parse(other), code="open_channel_exists")
        data = serialize_state(state)
        staged = _Staged()
        staged.stage(op, None, data)
        self._replace(op, None, state, data)
        self._creating[pubkey] = op

        def created() -> None:
            if self._creating.get(pubkey) == op:
                del self._creating[pubkey]

        await self._durable(self._start_commit(staged, created))
        return state

    async def apply_payments(self, items: Sequence[contract.PaymentItem], now: int
                             ) -> builtins.list[contract.PaymentResult]:
        """Apply payments in order (rules.apply_payment); all successes are committed as ONE batch."""
        results, commits = self._stage_payments(items, now)
        for commit in commits:  # our write, and any write an error was judged against
            await self._durable(commit)
        return results

    def start_payments(self, items: Sequence[contract.PaymentItem], now: int,
                       reply: Callable[[builtins.list[contract.PaymentResult] | Exception], None]) -> None:
        """`apply_payments` without a coroutine, for ChanStore's fast front: `reply` gets the results once
        they are durable, as `apply_payments` returns them, or the error it would raise. It is called
        exactly once (and must not raise): right away when no write is pending (e.g. every item refused,
        or memory storage), else from the last pending commit's callback, in the loop iteration after its
        write returned."""
        try:
            results, commits = self._stage_payments(items, now)
        except Exception as exc:  # noqa: BLE001 - handed to reply, as apply_payments would raise it
            reply(exc)
            return
        waiting = len(commits)
        if not waiting:
            reply(results)
            return

        def settled(commit: _Commit) -> None:
            nonlocal waiting
            if waiting <= 0:  # an earlier commit failed and was replied
                return
            error = _commit_error(commit)
            if error is not None:
                waiting = 0
                reply(error)
                return
            waiting -= 1
            if not waiting:
                reply(results)

        for commit in commits:
            commit.add_done_callback(settled)

    def _stage_payments(self, items: Sequence[contract.PaymentItem], now: int
                        ) -> tuple[builtins.list[contract.PaymentResult], set[_Commit]]:
        """Apply payments in memory and hand their batch to the storage: (results, the commits to wait for:
        ours and any pending write an error was judged against)."""
        self._check_usable()
        contract.check_payments_args(items, now)
        results: list[contract.PaymentResult] = []
        staged = _Staged()
        seen: list[bytes] = []
        for item in items:
            op = item.outpoint.serialize()
            seen.append(op)
            try:
                found = self._lookup(op)
                if found is None:
                    raise ChannelNotFound(f"no channel with funding outpoint {item.outpoint}")
                old, state = found
                when = now if item.now is None else item.now
                accepted = apply_payment(state, item.change_value, item.der, item.sighash, when)
                new = _serialize_successor(accepted.state, state, old)
            except PaychanError as err:
                results.append(err)
                continue
            staged.stage(op, old, new)
            self._replace(op, old, accepted.state, new)
            results.append(contract.PaymentApplied(accepted.value_received, accepted.state.change_value,
                                          accepted.state.status))
        if staged:
            self._start_commit(staged)
        return results, self._pending_commits(seen)

    async def compare_and_set(self, expected_sha256: bytes, new_state: ChannelState) -> ChannelState:
        """Replace the state if SHA256(current serialized state) == expected; else StateConflict(current)."""
        self._check_usable()
        if type(expected_sha256) is not bytes or len(expected_sha256) != 32:
            raise InvalidInput("expected must be a 32-byte SHA256")
        op = new_state.outpoint.serialize()
        found = self._lookup(op)
        if found is None:
            raise ChannelNotFound(f"no channel with funding outpoint {new_state.outpoint}")
        old, current = found
        if hashlib.sha256(old).digest() != expected_sha256:
            await self._durable_ops((op,))
            raise contract.StateConflict("state conflict: the channel changed since it was read", current)
        if new_state.client_pubkey != current.client_pubkey or new_state.exp_time != current.exp_time:
            raise InvalidInput("compare_and_set cannot change a channel's client key or expiry")
        new = serialize_state(new_state)
        if new == old:
            await self._durable_ops((op,))
            return new_state
        staged = _Staged()
        staged.stage(op, old, new)
        self._replace(op, old, new_state, new)
        await self._durable(self._start_commit(staged))
        return new_state

    # ------------------------------------------------------------------ memory

    def _lookup(self, op: bytes, stored: bytes | None = None) -> tuple[bytes, ChannelState] | None:
        """(serialized, parsed) latest state: memory first, else storage (`stored` if already read)."""
        cached = self._cache.get(op)
        if cached is not None:  # every write updates the cache: an entry is the latest state
            self._cache.move_to_end(op)
            return cached
        data = self._dirty.get(op)
        if data is None:
            data = stored if stored is not None else self._storage.get(keys.channel_key(op))
            if data is None:
                return None
        state = _parse_stored(data)
        if state.status in _LIVE:
            self._remember(op, data, state)
        return data, state

    def _remember(self, op: bytes, data: bytes, state: ChannelState) -> None:
        self._cache[op] = (data, state)
        self._cache.move_to_end(op)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _replace(self, op: bytes, old: bytes | None, state: ChannelState, new: bytes) -> None:
        """Make `state` the channel's latest state in memory (kept until durable, and cached if not closed)."""
        if old is None:
            self._counts[state.status] += 1
        elif not keys.same_status(old, new):
            self._counts[keys.raw_status(old)] -= 1
            self._counts[state.status] += 1
        self._dirty[op] = new
        if state.status in _LIVE:
            self._remember(op, new, state)
        else:
            self._cache.pop(op, None)

    def _open_channel_of(self, pubkey: bytes) -> bytes | None:
        """Outpoint of an open channel of this client key, if any."""
        creating = self._creating.get(pubkey)
        if creating is not None:
            return creating
        for key, _ in self._storage.scan(keys.client_prefix(pubkey)):
            op = keys.outpoint_of_index_key(key)
            cached = self._cache.get(op)
            data = cached[0] if cached is not None else self._dirty.get(op) or self._storage.get(keys.channel_key(op))
            if data is not None and keys.raw_status(data) is Status.OPEN:
                return op
        return None

    # ------------------------------------------------------------------ durability

    def _start_commit(self, staged: _Staged, after: Callable[[], None] | None = None) -> _Commit:
        """Hand the batch to the storage now (it applies batches in the order handed over)."""
        batch = staged.batch()
        ops = staged.outpoints
        commit = self._storage.start_commit(batch)
        for op in ops:
            self._pending[op] = commit

        def done(commit: _Commit) -> None:
            exc: BaseException | None
            exc = StorageError("commit cancelled, outcome unknown") if commit.cancelled() else commit.exception()
            if exc is not None:
                self._fail(exc)
                return
            for op in ops:
                if self._pending.get(op) is commit:  # this write carried the latest state: it is on disk now
                    del self._pending[op]
                    self._dirty.pop(op, None)
            if after is not None:
                after()

        if commit.done():  # e.g. memory storage: settle the bookkeeping before anyone awaits the commit
            done(commit)
        else:  # runs before the waiters resume (callbacks run in the order they were added)
            commit.add_done_callback(done)
        return commit

    async def _durable(self, commit: _Commit) -> None:
        """Wait until the `commit`'s batch is durable; ServiceUnavailable if the write failed."""
        try:
            await asyncio.shield(commit)
        except asyncio.CancelledError:
            if not commit.cancelled():
                raise  # the waiter itself is cancelled; the write goes on
        except Exception:  # noqa: BLE001, S110 - told below, as the commit's outcome
            pass
        error = _commit_error(commit)
        if error is not None:
            raise error

    def _pending_commits(self, ops: Iterable[bytes]) -> set[_Commit]:
        """The pending writes of these channels' latest states."""
        return {commit for op in ops if (commit := self._pending.get(op)) is not None}

    async def _durable_ops(self, ops: Iterable[bytes]) -> None:
        """Wait until the latest writes of these channels (those pending now) are durable."""
        for commit in self._pending_commits(ops):
            await self._durable(commit)

    def _fail(self, exc: BaseException) -> None:
        if self._failure is not None:
            return
        self._failure = exc
        log.critical("storage write failed, memory is ahead of disk: fail-stop (%r)", exc)
        self._on_fatal(exc)

    def _check_usable(self) -> None:
        if self._failure is not None:
            raise ServiceUnavailable("channel store failed (a write failed); it must be restarted")
