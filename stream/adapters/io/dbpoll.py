"""Polling database tables: MariaDB/MySQL (PyMySQL) or PostgreSQL (psycopg 3).

The DSN is `mysql://user:password@host:port/database` (also `mariadb://`) or
`postgresql://user:password@host:port/database` (also `postgres://`).
`TablePoll` reads rows by an increasing id, `WindowPoll` rows by a time column with a lookback.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Generator, Iterator
from contextlib import closing
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote, urlsplit

from stream.adapters.io.source import IDLE, Item

if TYPE_CHECKING:  # the drivers are imported only for the dialect in use
    import psycopg
    from pymysql.connections import Connection as MysqlConnection
    from pymysql.cursors import DictCursor

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MYSQL, POSTGRES = ("mysql", "mariadb"), ("postgresql", "postgres")


class DsnError(ValueError):
    pass


class Database:
    """One connection, the dialect's identifier quoting, rows as dicts."""

    conn: psycopg.Connection[dict[str, Any]] | MysqlConnection[DictCursor]

    def __init__(self, dsn: str) -> None:
        u = urlsplit(dsn)
        if u.scheme not in MYSQL + POSTGRES:
            raise DsnError(f"unsupported database {u.scheme!r} in --dsn; use mysql://user:password@"
                           "host:port/database or postgresql://user:password@host:port/database")
        if not u.path.strip("/"):
            raise DsnError("--dsn needs a database name: mysql://user:password@host:port/database")
        self.postgres = u.scheme in POSTGRES
        if self.postgres:
            import psycopg
            from psycopg.rows import dict_row
            self.conn = psycopg.connect(host=u.hostname or "127.0.0.1", port=u.port or 5432,
                                        user=unquote(u.username or "postgres"),
                                        password=unquote(u.password or "") or None,
                                        dbname=u.path.strip("/"), autocommit=True,
                                        row_factory=dict_row)
        else:
            import pymysql
            import pymysql.cursors
            self.conn = pymysql.connect(
                host=u.hostname or "127.0.0.1", port=u.port or 3306,
                user=unquote(u.username or "root"), password=unquote(u.password or ""),
                database=u.path.strip("/"), charset="utf8mb4", autocommit=True,
                cursorclass=pymysql.cursors.DictCursor)

    def q(self, name: str) -> str:
        if not _IDENT.match(name):
            raise DsnError(f"not a plain table or column name: {name!r}")
        return f'"{name}"' if self.postgres else f"`{name}`"

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())

    def columns(self, table: str) -> list[str]:
        if self.postgres:
            return [r["column_name"] for r in self.rows(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s",
                (table,))]
        return [r["Field"] for r in self.rows(f"SHOW COLUMNS FROM {self.q(table)}")]

    def close(self) -> None:
        self.conn.close()


def connect(dsn: str) -> MysqlConnection[DictCursor]:
    """A MySQL connection with dict rows (the VICIdial poller: VICIdial runs on MySQL only)."""
    db = Database(dsn)
    if db.postgres:
        db.close()
        raise DsnError("VICIdial's database is MySQL/MariaDB: use mysql://")
    return cast("MysqlConnection[DictCursor]", db.conn)


def row_bytes(row: dict[str, Any]) -> bytes:
    """A row as JSON: its raw form in a dead-letter record."""
    return json.dumps(row, default=str, sort_keys=True).encode()


class Poller:
    """What the pollers share: one connection, `stop`, and reading pass after pass; after a pass
    that reached the end of what there is, a one-shot poll ends and a following one says IDLE
    and waits."""

    poll_s: float
    follow: bool
    _stop = False

    def stop(self) -> None:
        self._stop = True

    def _connect(self) -> Any:
        raise NotImplementedError

    def _pass(self, conn: Any) -> Generator[Item, None, bool]:
        """Yield one pass's items; return whether it caught up."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[Item | object]:
        with closing(self._connect()) as conn:
            while not self._stop:
                caught_up = yield from self._pass(conn)
                if caught_up:
                    if not self.follow:
                        return
                    yield IDLE
                    time.sleep(self.poll_s)


class TablePoll(Poller):
    """Rows by an increasing integer key (the realtime queue_log's `id`).

    An autoincrement id is taken at insert but becomes visible at commit, so concurrent writers
    can make id 41 visible after 42 was read. Each poll therefore re-reads the last `gap_window`
    ids and skips those already read (kept in the checkpoint): a late row inside the window is
    still read, once."""

    def __init__(self, dsn: str, table: str, *, key: str = "id",
                 position: dict[str, Any] | None = None, poll_s: float = 1.0, page: int = 1000,
                 follow: bool = True, gap_window: int = 200) -> None:
        for name in (table, key):
            if not _IDENT.match(name):
                raise DsnError(f"not a plain table or column name: {name!r}")
        self.dsn, self.table, self.key = dsn, table, key
        position = position or {}
        self.last: int | None = position.get("last", None)
        self.seen: set[int] = set(position.get("seen", []))
        self.poll_s, self.page, self.follow, self.gap_window = poll_s, page, follow, gap_window

    def checkpoint_position(self) -> dict[str, Any]:
        return {"last": self.last, "seen": sorted(self.seen)}

    def _connect(self) -> Database:
        return Database(self.dsn)

    def _pass(self, db: Database) -> Generator[Item, None, bool]:
        table, key = db.q(self.table), db.q(self.key)
        low = None if self.last is None else self.last - self.gap_window
        if low is None:
            rows = db.rows(f"SELECT * FROM {table} ORDER BY {key} LIMIT %s", (self.page,))
        else:
            rows = db.rows(f"SELECT * FROM {table} WHERE {key} > %s ORDER BY {key} "
                           "LIMIT %s", (low, self.page + len(self.seen)))
        fresh = 0
        for row in rows:
            k = int(row[self.key])
            if k in self.seen:
                continue
            fresh += 1
            self.seen.add(k)
            if self.last is None or k > self.last:
                self.last = k
            yield Item(row_bytes(row), row, {"last": self.last, "id": k})
        if self.last is not None:
            floor = self.last - self.gap_window
            self.seen = {k for k in self.seen if k > floor}
        return fresh < self.page


class WindowPoll(Poller):
    """Polling a table whose rows have a time but no increasing id (the `cdr` table: `start`
    or FreePBX's `calldate`). A CDR row is inserted when its call ends, with the call's start
    time, so a long call's row lands behind rows already read: each poll re-reads the last
    `lookback_s` and skips the rows it has seen (by their content's hash, kept in the checkpoint
    for the lookback window)."""

    def __init__(self, dsn: str, table: str, *, time_columns: tuple[str, ...] = ("start", "calldate"),
                 lookback_s: float = 4 * 3600, position: dict[str, Any] | None = None,
                 poll_s: float = 1.0, page: int = 5000, follow: bool = True) -> None:
        if not _IDENT.match(table):
            raise DsnError(f"not a plain table name: {table!r}")
        self.dsn, self.table, self.time_columns = dsn, table, time_columns
        self.lookback_s, self.poll_s, self.page, self.follow = lookback_s, poll_s, page, follow
        position = position or {}
        self.cursor: str | None = position.get("cursor")
        self.seen: dict[str, str] = dict(position.get("seen", {}))
        self._caught_up = self.cursor is not None  # a resumed poll re-reads the lookback first
        self._column: str | None = None

    def _time_column(self, db: Database) -> str:
        names = {c.lower(): c for c in db.columns(self.table)}
        for c in self.time_columns:
            if c in names:
                return names[c]
        raise DsnError(f"table {self.table} has none of the columns {', '.join(self.time_columns)}")

    def checkpoint_position(self) -> dict[str, Any]:
        """The whole position (cursor and the rows seen in the lookback) for the checkpoint;
        each item carries only the cursor."""
        return {"cursor": self.cursor, "seen": dict(self.seen)}

    def _connect(self) -> Database:
        return Database(self.dsn)

    def _pass(self, db: Database) -> Generator[Item, None, bool]:
        if self._column is None:
            self._column = self._time_column(db)
        col = self._column
        table, qcol = db.q(self.table), db.q(col)
        since = None if self.cursor is None else datetime.fromisoformat(self.cursor)
        if since is not None and self._caught_up:
            since -= timedelta(seconds=self.lookback_s)
        if since is None:
            rows = db.rows(f"SELECT * FROM {table} ORDER BY {qcol} LIMIT %s", (self.page,))
        else:
            rows = db.rows(f"SELECT * FROM {table} WHERE {qcol} >= %s ORDER BY {qcol} "
                           "LIMIT %s", (since, self.page))
        fresh = 0
        for row in rows:
            raw = row_bytes(row)
            key = hashlib.sha1(raw).hexdigest()[:20]
            t = row[col]
            t_text = t.isoformat() if hasattr(t, "isoformat") else str(t)
            if key in self.seen:
                continue
            fresh += 1
            self.seen[key] = t_text
            if self.cursor is None or t_text > self.cursor:
                self.cursor = t_text
            yield Item(raw, row, {"cursor": self.cursor})
        if self.cursor is not None:
            floor = (datetime.fromisoformat(self.cursor)
                     - timedelta(seconds=self.lookback_s)).isoformat()
            self.seen = {k: v for k, v in self.seen.items() if v >= floor}
        self._caught_up = len(rows) < self.page or not fresh
        return self._caught_up
