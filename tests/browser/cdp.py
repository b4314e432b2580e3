"""A small synchronous Chrome DevTools Protocol driver for the browser tests.

Debian's `chromium` runs headless with a fresh profile; the tests talk to it over the DevTools
websocket (aiohttp, already a dependency of the service) on a private event loop thread, so the
test code stays synchronous. No chromedriver, no selenium, nothing downloaded.

What the tests need and nothing more: open a page, navigate, evaluate JavaScript (by value),
wait for a condition, click like a user (a real mouse event at the element's position), record
the server-sent events the page receives, collect JavaScript exceptions and console/log errors,
take a screenshot.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
MISSING = ("Chromium is needed for the wallboard browser tests and was not found at "
           f"{' or '.join(CHROMIUM_CANDIDATES)} (nor CALLKPI_CHROMIUM): install the Debian packages "
           "`chromium chromium-driver` (sudo apt-get install chromium chromium-driver)")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--no-default-browser-check", "--disable-extensions", "--mute-audio",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1920,1080",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0")


def chromium_binary() -> str:
    """The Chromium executable, or an AssertionError naming the Debian packages (never a skip)."""
    for cand in (os.environ.get("CALLKPI_CHROMIUM"), *CHROMIUM_CANDIDATES):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    raise AssertionError(MISSING)


class CdpError(RuntimeError):
    pass


@dataclass
class PageLog:
    """What the page reported: uncaught exceptions, console.error calls, Log domain errors."""
    exceptions: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    log_errors: list[dict[str, Any]] = field(default_factory=list)

    def clear(self) -> None:
        self.exceptions.clear()
        self.console_errors.clear()
        self.log_errors.clear()

    def script_errors(self) -> list[str]:
        """Errors of the page's own code: exceptions, console.error, and non-network log errors."""
        return [*self.exceptions, *self.console_errors,
                *(f"{e.get('source')}: {e.get('text')} ({e.get('url', '')})"
                  for e in self.log_errors if e.get("source") != "network")]


class Browser:
    """One headless Chromium process with its own throw-away profile."""

    def __init__(self, workdir: Path) -> None:
        self.binary = chromium_binary()
        self.profile = workdir / "chromium-profile"
        shutil.rmtree(self.profile, ignore_errors=True)
        self.profile.mkdir(parents=True)
        self.log_path = workdir / "chromium.log"
        self.proc = subprocess.Popen(
            [self.binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
        self.port = self._devtools_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="cdp", daemon=True)
        self.thread.start()
        self.session: aiohttp.ClientSession = self.run(self._session())
        self.pages: list[Page] = []

    async def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    def _devtools_port(self, timeout: float = 30.0) -> int:
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"chromium exited with {self.proc.returncode}: "
                                     f"{self.log_path.read_text(errors='replace')[-2000:]}")
            try:
                first = marker.read_text().splitlines()[0]
                if first.strip():
                    return int(first)
            except (OSError, IndexError, ValueError):
                pass
            time.sleep(0.05)
        raise AssertionError(f"chromium did not open its DevTools port within {timeout}s: "
                             f"{self.log_path.read_text(errors='replace')[-2000:]}")

    def run(self, coro: Any, timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def new_page(self) -> Page:
        async def create() -> dict[str, Any]:
            async with self.session.put(f"http://127.0.0.1:{self.port}/json/new?about:blank") as r:
                r.raise_for_status()
                return await r.json(content_type=None)
        target = self.run(create())
        page = Page(self, target["id"], target["webSocketDebuggerUrl"])
        self.pages.append(page)
        return page

    def close(self) -> None:
        for p in self.pages:
            try:
                p.close()
            except Exception:  # noqa: BLE001 - closing anyway
                pass
        try:
            self.run(self.session.close(), timeout=5)
        except Exception:  # noqa: BLE001
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    """One tab: `send` a CDP command, `evaluate` JavaScript, `wait_for` a JS condition."""

    def __init__(self, browser: Browser, target_id: str, ws_url: str) -> None:
        self.browser = browser
        self.target_id = target_id
        self.log = PageLog()
        self.sse: list[dict[str, Any]] = []  # Network.eventSourceMessageReceived, in order
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self.ws: aiohttp.ClientWebSocketResponse = browser.run(self._connect(ws_url))
        self.send("Runtime.enable")
        self.send("Log.enable")
        self.send("Page.enable")
        self.send("Network.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=1920, height=1080,
                  deviceScaleFactor=1, mobile=False)

    async def _connect(self, url: str) -> aiohttp.ClientWebSocketResponse:
        ws = await self.browser.session.ws_connect(url, max_msg_size=0, heartbeat=None)
        asyncio.get_running_loop().create_task(self._reader(ws))
        return ws

    async def _reader(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if "id" in data:
                fut = self._pending.pop(data["id"], None)
                if fut is not None and not fut.done():
                    if "error" in data:
                        fut.set_exception(CdpError(f"{data['error']}"))
                    else:
                        fut.set_result(data.get("result", {}))
            else:
                self._event(data.get("method", ""), data.get("params", {}))
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(CdpError("DevTools connection closed"))

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.exceptionThrown":
            d = params.get("exceptionDetails", {})
            desc = d.get("exception", {}).get("description") or d.get("text", "")
            self.log.exceptions.append(f"{desc} at {d.get('url', '')}:{d.get('lineNumber')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = params.get("args", [])
            self.log.console_errors.append(" ".join(
                str(a.get("value", a.get("description", ""))) for a in args))
        elif method == "Network.eventSourceMessageReceived":
            self.sse.append(params)
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            if entry.get("level") == "error":
                self.log.log_errors.append(entry)

    async def _send(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        msg_id = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = fut
        await self.ws.send_str(json.dumps({"id": msg_id, "method": method, "params": params}))
        return await fut

    def send(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        return self.browser.run(self._send(method, params), timeout)

    def navigate(self, url: str, timeout: float = 20.0) -> None:
        """Go to `url` and wait until the document (and its deferred script) has loaded."""
        result = self.send("Page.navigate", url=url)
        if result.get("errorText"):
            raise CdpError(f"navigating to {url}: {result['errorText']}")
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'",
                      timeout, f"{url} to load")

    def evaluate(self, expression: str, timeout: float = 30.0) -> Any:
        result = self.send("Runtime.evaluate", timeout, expression=expression,
                           returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            d = result["exceptionDetails"]
            raise CdpError(f"{expression[:80]}: {d.get('exception', {}).get('description') or d}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float, what: str = "", interval: float = 0.05) -> Any:
        """Poll a JavaScript expression until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            try:
                last = self.evaluate(expression)
            except CdpError as exc:  # e.g. the context is being replaced by a navigation
                last = exc
            if last and not isinstance(last, CdpError):
                return last
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for "
                                     f"{what or expression}; last value {last!r}")
            time.sleep(interval)

    def click(self, selector: str) -> None:
        """Press and release the left button at the centre of the element, as a user would: the
        element must be visible and on top there, or the click lands elsewhere."""
        box = self.evaluate(f"""(() => {{
            const n = document.querySelector({json.dumps(selector)});
            if (!n) return null;
            n.scrollIntoView({{block: "nearest", inline: "nearest"}});
            const r = n.getBoundingClientRect();
            return {{x: r.left + r.width / 2, y: r.top + r.height / 2}};
        }})()""")
        if not box:
            raise AssertionError(f"nothing matches {selector!r} to click on")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"],
                      button="left", clickCount=1)

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=False)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.browser.run(self.ws.close(), timeout=5)
        finally:
            async def close_target() -> None:
                url = f"http://127.0.0.1:{self.browser.port}/json/close/{self.target_id}"
                async with self.browser.session.get(url) as r:
                    await r.read()
            try:
                self.browser.run(close_target(), timeout=5)
            except Exception:  # noqa: BLE001 - the browser may be gone already
                pass
