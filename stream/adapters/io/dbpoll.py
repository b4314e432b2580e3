"""Polling a database table by an increasing key (MariaDB/MySQL via PyMySQL).

`TablePoll` reads rows with `key > last` in key order, a page at a time, and yields IDLE when
caught up. The DSN is `mysql://user:password@host:port/database` (also `mariadb://`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

from stream.adapters.io.source import IDLE, Item

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class DsnError(ValueError):
    pass


def connect(dsn: str) -> Any:
    import pymysql
    import pymysql.cursors
    u = urlsplit(dsn)
    if u.scheme not in ("mysql", "mariadb"):
        raise DsnError(f"unsupported database {u.scheme!r} in --dsn; use mysql://user:password@"
                       "host:port/database")
    if not u.path.strip("/"):
        raise DsnError("--dsn needs a database name: mysql://user:password@host:port/database")
    return pymysql.connect(host=u.hostname or "127.0.0.1", port=u.port or 3306,
                           user=unquote(u.username or "root"), password=unquote(u.password or ""),
                           database=u.path.strip("/"), charset="utf8mb4", autocommit=True,
                           cursorclass=pymysql.cursors.DictCursor)


def row_bytes(row: dict[str, Any]) -> bytes:
    """A row as JSON: its raw form in a dead-letter record."""
    return json.dumps(row, default=str, sort_keys=True).encode()


class TablePoll:
    def __init__(self, dsn: str, table: str, *, key: str = "id",
                 position: dict[str, Any] | None = None, poll_s: float = 1.0, page: int = 1000,
                 follow: bool = True) -> None:
        for name in (table, key):
            if not _IDENT.match(name):
                raise DsnError(f"not a plain table or column name: {name!r}")
        self.dsn, self.table, self.key = dsn, table, key
        self.last = (position or {}).get("last", None)
        self.poll_s, self.page, self.follow = poll_s, page, follow
        self._stop = False

    def stop(self) -> None:
        self._stop = True

    def __iter__(self) -> Iterator[Item | object]:
        conn = connect(self.dsn)
        try:
            while not self._stop:
                with conn.cursor() as cur:
                    if self.last is None:
                        cur.execute(f"SELECT * FROM `{self.table}` ORDER BY `{self.key}` LIMIT %s",
                                    (self.page,))
                    else:
                        cur.execute(f"SELECT * FROM `{self.table}` WHERE `{self.key}` > %s "
                                    f"ORDER BY `{self.key}` LIMIT %s", (self.last, self.page))
                    rows = cur.fetchall()
                for row in rows:
                    self.last = row[self.key]
                    yield Item(row_bytes(row), row, {"last": self.last})
                if len(rows) < self.page:
                    if not self.follow:
                        return
                    yield IDLE
                    time.sleep(self.poll_s)
        finally:
            conn.close()
