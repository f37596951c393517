"""ChanStore's PostgreSQL schema: versioned migrations, applied in order inside one transaction each.

A row per channel with typed columns for everything the management queries filter or sort on (status,
client key, expiry, values, payment count, times, settlement), plus `state`: the channel's versioned
binary record (`ChannelState.serialize`), the one source of truth for the other fields, and `digest`,
its SHA256, which a compare-and-set names. Constraints keep the typed columns honest: the status is one of
the three, keys are 33 bytes, outpoints 36, and at most one open channel per client key (spec 6.5).
"""

from __future__ import annotations

import logging

import asyncpg

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

log = logging.getLogger("paychan.chanstore")

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "channels table", """
CREATE TABLE channels (
    outpoint          bytea    PRIMARY KEY CHECK (length(outpoint) = 36),
    family            smallint NOT NULL CHECK (family BETWEEN 1 AND 3),
    status            smallint NOT NULL CHECK (status BETWEEN 1 AND 3),
    client_pubkey     bytea    NOT NULL CHECK (length(client_pubkey) = 33),
    exp_time          bigint   NOT NULL CHECK (exp_time >= 0),
    funding_value     bigint   NOT NULL CHECK (funding_value >= 0),
    change_value      bigint   NOT NULL CHECK (change_value >= 0 AND change_value <= funding_value),
    payment_count     bigint   NOT NULL CHECK (payment_count >= 0),
    open_time         bigint   NOT NULL,
    last_payment_time bigint   NOT NULL,
    settlement_txid   text     NOT NULL DEFAULT '',
    settlement_fee    bigint   NOT NULL DEFAULT 0,
    state             bytea    NOT NULL,
    digest            bytea    NOT NULL CHECK (length(digest) = 32),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX channels_one_open_per_client ON channels (client_pubkey) WHERE status = 1;
CREATE INDEX channels_by_status_expiry ON channels (status, exp_time, outpoint);
CREATE INDEX channels_by_client ON channels (client_pubkey, outpoint);
"""),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]

_LOCK_ID = 0x7061796368616E  # "paychan": one migrator at a time across instances


async def migrate(conn: asyncpg.Connection) -> int:
    """Apply every migration the database lacks (under an advisory lock); return the schema version.

    Refuses a database whose schema is newer than this program knows (a downgrade would lose data)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_ID)
        await conn.execute("CREATE TABLE IF NOT EXISTS chanstore_schema (version integer PRIMARY KEY, "
                           "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        current = await conn.fetchval("SELECT coalesce(max(version), 0) FROM chanstore_schema")
        if current > SCHEMA_VERSION:
            raise RuntimeError(f"database schema version {current} is newer than this ChanStore knows "
                               f"({SCHEMA_VERSION}); upgrade paychan")
        for version, name, sql in MIGRATIONS:
            if version > current:
                await conn.execute(sql)
                await conn.execute("INSERT INTO chanstore_schema (version, name) VALUES ($1, $2)", version, name)
                log.info("applied ChanStore schema migration %d (%s)", version, name)
    return SCHEMA_VERSION
