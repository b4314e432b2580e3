"""A TCP proxy in front of a real Redis that cuts a connection at a chosen point of one command.

Killing clients from Redis (`CLIENT KILL`) only hurts a command that is in flight at that
instant: most kills find the worker's connection idle, redis-py reconnects without a word, and a
test that hopes for a mid-commit kill passes or fails with the machine's speed. The proxy makes
both halves of "the commit may or may not have applied" happen on demand:

- `Cut.REQUEST`: the next command carrying `marker` never reaches Redis (not applied);
- `Cut.REPLY`: it reaches Redis, runs, and its reply is dropped (applied, the client cannot know).

Either way both sockets are closed, as a dropped network path or a failover would.
"""

from __future__ import annotations

import enum
import socket
import threading
import time
from collections import Counter
from types import TracebackType


class Cut(enum.Enum):
    REQUEST = "request"
    REPLY = "reply"


class FaultProxy:
    """Forwards 127.0.0.1:`port` to Redis at `upstream`; `arm` one cut at a time."""

    def __init__(self, upstream: tuple[str, int], marker: bytes) -> None:
        self.upstream = upstream
        self.marker = marker
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._armed: list[Cut] = []
        self.fired: Counter[Cut] = Counter()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def arm(self, cut: Cut) -> None:
        """The next command carrying the marker, on any connection, is cut this way."""
        with self._lock:
            self._armed.append(cut)

    def wait_fired(self, total: int, timeout: float) -> None:
        """Wait until `total` cuts have been made in all."""
        deadline = time.monotonic() + timeout
        while sum(self.fired.values()) < total:
            if time.monotonic() > deadline:
                raise AssertionError(f"{total - sum(self.fired.values())} armed cut(s) never fired "
                                     f"in {timeout} s: no command carried the marker")
            time.sleep(0.05)

    def _take(self) -> Cut | None:
        with self._lock:
            return self._armed.pop(0) if self._armed else None

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            link = _Link(self, client, server)
            threading.Thread(target=link.requests, daemon=True).start()
            threading.Thread(target=link.replies, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


class _Link:
    """One client connection and its own connection to Redis."""

    def __init__(self, proxy: FaultProxy, client: socket.socket, server: socket.socket) -> None:
        self.proxy, self.client, self.server = proxy, client, server
        self.cut_reply = threading.Event()
        self._tail = b""

    def _drop(self, cut: Cut) -> None:
        with self.proxy._lock:
            self.proxy.fired[cut] += 1
        for s in (self.client, self.server):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def requests(self) -> None:
        """Client to Redis. The marker is looked for across chunk boundaries."""
        while True:
            try:
                chunk = self.client.recv(1 << 16)
            except OSError:
                return
            if not chunk:
                self.server.close()
                return
            seen = self.proxy.marker in self._tail + chunk
            self._tail = chunk[-len(self.proxy.marker):]
            cut = self.proxy._take() if seen else None
            if cut is Cut.REQUEST:
                self._drop(cut)   # what of the command went before this chunk never completes
                return
            if cut is Cut.REPLY:
                self.cut_reply.set()
            try:
                self.server.sendall(chunk)
            except OSError:
                return

    def replies(self) -> None:
        """Redis to client. Once a command is marked, its reply (the next bytes Redis sends on
        this connection: redis-py has read every earlier reply before it sends a command) is
        dropped."""
        while True:
            try:
                chunk = self.server.recv(1 << 16)
            except OSError:
                return
            if not chunk:
                self.client.close()
                return
            if self.cut_reply.is_set():
                self._drop(Cut.REPLY)
                return
            try:
                self.client.sendall(chunk)
            except OSError:
                return
