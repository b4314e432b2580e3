"""A deterministic stretch of queue_log for the end-to-end tests, and its KPIs computed by hand."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any, NamedTuple

INSERT_QUEUE_LOG = ("INSERT INTO queue_log (time, callid, queuename, agent, event, data1, data2, data3, "
                    "data4, data5) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)")


def queue_log_row(line: str, tz: tzinfo) -> tuple[Any, ...]:
    """A queue_log file line as the realtime table's row (INSERT_QUEUE_LOG): its time as the
    table's text in `tz`, then callid, queue, agent, event and data1..data5."""
    p = line.split("|")
    t = datetime.fromtimestamp(int(p[0]), tz).strftime("%Y-%m-%d %H:%M:%S.000000")
    return (t, p[1], p[2], p[3], p[4], *(p[5:] + [""] * 5)[:5])


class Expected(NamedTuple):
    answered: int
    agent_connected: int
    abandoned: int
    dialed: int
    unanswered: int
    talk_s: int
    wait_s: int


def outbound_queue_log(base_s: int, n_calls: int, queue: str, agents: list[str],
                       tag: str = "c") -> tuple[list[str], Expected]:
    """Calls 20 s apart through an outbound (predictive) queue: kinds 0 and 1 are answered and
    handled, 2 is dropped (ABANDON), 3 is an unanswered agent dial (OUTCALL NOANSWER)."""
    lines: list[tuple[int, int, str]] = []  # (time, order, line)
    for a in agents:
        lines.append((base_s - 60, 0, f"{base_s - 60}|NONE|NONE|PJSIP/{a}|AGENTLOGIN|PJSIP/{a}"))
    answered = connected = abandoned = dialed = talk_total = wait_total = 0
    for i in range(n_calls):
        t = base_s + 20 * i
        cid = f"{t}.{tag}{i}"
        agent = agents[i % len(agents)]
        kind = i % 4
        if kind in (0, 1, 2):
            lines.append((t, 1, f"{t}|{cid}|{queue}|NONE|ENTERQUEUE||5550{i:06d}|1"))
            answered += 1
        if kind in (0, 1):
            wait, talk = i % 5, 30 + i % 7
            lines.append((t + wait, 2, f"{t + wait}|{cid}|{queue}|PJSIP/{agent}|CONNECT|{wait}|x|1"))
            lines.append((t + wait + talk, 3,
                          f"{t + wait + talk}|{cid}|{queue}|PJSIP/{agent}|COMPLETECALLER|{wait}|{talk}|1"))
            connected += 1
            talk_total += talk
            wait_total += wait
        elif kind == 2:
            lines.append((t + 10, 2, f"{t + 10}|{cid}|{queue}|NONE|ABANDON|1|1|10"))
            abandoned += 1
        else:
            lines.append((t + 15, 1, f"{t + 15}|{cid}|{queue}|PJSIP/{agent}|OUTCALL|NOANSWER|0|15"))
            dialed += 1
    end = base_s + 20 * n_calls + 60
    for a in agents:
        lines.append((end, 9, f"{end}|NONE|NONE|PJSIP/{a}|AGENTLOGOFF|PJSIP/{a}|100"))
    lines.sort(key=lambda x: (x[0], x[1]))
    return [ln for _, _, ln in lines], Expected(answered, connected, abandoned, dialed, dialed,
                                                 talk_total, wait_total)
