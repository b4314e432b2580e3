"""Bad input: counted by reason, logged once per reason and minute, dead-lettered with its raw
bytes; never a reason to stop the adapter."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from typing import Any

from stream.contract import format_ts

log = logging.getLogger("callkpi.adapter")
MAX_ORIGINAL = 64 * 1024


class BadInput:
    def __init__(self, source: str, instance: str) -> None:
        self.source, self.instance = source, instance
        self.counts: dict[str, int] = {}
        self._logged: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def record(self, reason: str, message: str, raw: bytes, position: Any) -> bytes:
        """Count and maybe log one bad record; return its dead-letter record."""
        self.counts[reason] = self.counts.get(reason, 0) + 1
        now = time.monotonic()
        if now - self._logged.get(reason, -1e9) >= 60:
            more = self._suppressed.pop(reason, 0)
            log.warning("%s: bad input (%s): %s%s", self.source, reason, message,
                        f" (and {more} more like it in the last minute)" if more else "")
            self._logged[reason] = now
        else:
            self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
        return json.dumps({
            "reason": reason, "message": message,
            "rejected_at": format_ts(int(time.time() * 1000)),
            "source": {"adapter": self.source, "instance": self.instance, "position": position},
            # the raw record once, capped like the worker's dead letters (a record fits Kafka's
            # default 1 MB); its full length and hash say what was cut
            "original_b64": base64.b64encode(raw[:MAX_ORIGINAL]).decode(),
            "original_bytes": len(raw),
            "original_sha256": hashlib.sha256(raw).hexdigest(),
        }, default=str).encode()
