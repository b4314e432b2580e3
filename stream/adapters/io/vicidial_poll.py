"""Polling VICIdial's tables (MariaDB/MySQL). Rows change in place (a call's status when the
agent dispositions it, an agent cycle's epochs as it goes from pause to wait, talk and dispo),
so each poll re-reads every table from its oldest row that may still change (the handler keeps
those) or else from the last row read; the mapper emits each phase of a row once."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, NamedTuple

from stream.adapters.io.dbpoll import Poller, connect, row_bytes
from stream.adapters.io.source import Item


class Table(NamedTuple):
    name: str
    order: str
    """The column rows are read in order of (and re-read from)."""
    tiebreak: str
    joined: str = ""
    """Columns of other tables the mapper needs, and the joins that bring them to the row (`l`)."""
    joins: str = ""

    @property
    def select(self) -> str:
        columns = ", ".join(["l.*", *([self.joined] if self.joined else [])])
        return " ".join([f"SELECT {columns} FROM {self.name} l", *([self.joins] if self.joins else [])])


TABLES = (
    Table("vicidial_log", "l.call_date", "uniqueid",
          joined="c.dialstatus, c.dial_time, d.outbound_cid, k.dial_method",
          joins="LEFT JOIN vicidial_carrier_log c ON c.uniqueid = l.uniqueid "
                "LEFT JOIN vicidial_dial_log d ON d.uniqueid = l.uniqueid "
                "LEFT JOIN vicidial_campaigns k ON k.campaign_id = l.campaign_id"),
    Table("vicidial_closer_log", "l.closecallid", "closecallid"),
    Table("vicidial_agent_log", "l.agent_log_id", "agent_log_id"),
    Table("vicidial_user_log", "l.user_log_id", "user_log_id"),
)
FLAG_TABLES = ("vicidial_statuses", "vicidial_campaign_statuses")


def order_key(value: Any, tiebreak: Any) -> str:
    """A sortable text key: zero-padded numbers, ISO date-times, then the row's own id."""
    if isinstance(value, int):
        head = f"{value:020d}"
    elif hasattr(value, "isoformat"):
        head = value.isoformat(sep=" ")
    else:
        head = str(value)
    return f"{head}|{tiebreak}"


def _head(key: str) -> Any:
    head = key.split("|", 1)[0]
    return int(head) if head.isdigit() and len(head) == 20 else head


class VicidialPoll(Poller):
    def __init__(self, dsn: str, *, low_of: Callable[[str], str | None],
                 position: dict[str, Any] | None = None, poll_s: float = 2.0,
                 page: int = 5000, follow: bool = True) -> None:
        self.dsn, self.low_of = dsn, low_of
        self.last: dict[str, str] = dict((position or {}).get("last", {}))
        self.poll_s, self.page, self.follow = poll_s, page, follow

    def checkpoint_position(self) -> dict[str, Any]:
        return {"last": dict(self.last)}

    def _connect(self) -> Any:
        return connect(self.dsn)

    def _pass(self, conn: Any) -> Generator[Item, None, bool]:
        with conn.cursor() as cur:
            for name in FLAG_TABLES:
                cur.execute(f"SELECT * FROM `{name}`")
                for row in cur.fetchall():
                    yield Item(row_bytes(row), {**row, "_table": name}, {"table": name})
        full = False
        for t in TABLES:
            low = self.low_of(t.name) or self.last.get(t.name)
            rows = self._read(conn, t, low)
            full = full or len(rows) >= self.page
            for row in rows:
                key = order_key(row[t.order.split(".")[1]], row[t.tiebreak])
                if t.name not in self.last or key > self.last[t.name]:
                    self.last[t.name] = key
                yield Item(row_bytes(row), {**row, "_table": t.name, "_key": key},
                           {"table": t.name, "key": key})
        return not full

    def _read(self, conn: Any, t: Table, low: str | None) -> list[dict[str, Any]]:
        with conn.cursor() as cur:
            if low is None:
                cur.execute(f"{t.select} ORDER BY {t.order}, l.{t.tiebreak} LIMIT %s", (self.page,))
            else:
                cur.execute(f"{t.select} WHERE {t.order} >= %s ORDER BY {t.order}, "
                            f"l.{t.tiebreak} LIMIT %s", (_head(low), self.page))
            return list(cur.fetchall())
