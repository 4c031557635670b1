"""Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`), no webdriver.

Chromium reads commands from its fd 3 and writes answers and events to fd 4, as NUL-terminated JSON. A
reader thread files answers by id and keeps events, so tests wait on conditions (a page loaded, an element
appeared) and never on timers. Mouse clicks are real input events at the element's centre.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

HEADLESS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # The browser must not upgrade by itself: port443 is what is under test.
    "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable,HttpsFirstModeV2ForTypicallySecureUsers",
]
"""Headless Chromium on a machine with no network beyond its own: nothing runs in the background."""
ARGS = [*HEADLESS, "--remote-debugging-pipe"]

_TRAMPOLINE = (
    "import os, sys; a, b = int(sys.argv[1]), int(sys.argv[2]); os.dup2(a, 3); os.dup2(b, 4); "
    "os.close(a); os.close(b); os.execv(sys.argv[3], sys.argv[3:])"
)

# Waits inside the page: resolves once `condition` holds, re-checked on every DOM change; the deadline is
# a failure, not a pause.
_WAIT = """new Promise((resolve, reject) => {
  const check = () => { try { return (%s); } catch (e) { return false; } };
  if (check()) { resolve(true); return; }
  const seen = new MutationObserver(() => { if (check()) { seen.disconnect(); resolve(true); } });
  seen.observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
  setTimeout(() => { seen.disconnect(); reject(new Error("timed out waiting for: " + %s)); }, %d);
})"""


def chromium() -> str:
    """Debian's chromium, or a skip (a failure under CI) saying it is missing."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing; `make test` installs it when run as root (scripts/test-deps)")
        pytest.skip("NOTICE: chromium is not installed: the browser test did not run (see scripts/test-deps)")
    return path


class CDPError(AssertionError):
    """Chromium answered a command with an error, or a page script threw."""


class Browser:
    """One headless Chromium; `open(url)` gives a Page."""

    def __init__(self, profile: Path, *extra: str) -> None:
        executable = chromium()  # skips (or fails under CI) before anything is opened
        to_browser, self._in = _high_pipe()
        self._out, from_browser = _high_pipe()
        profile.mkdir(parents=True, exist_ok=True)
        self._stderr = open(profile / "chromium.log", "wb")  # closed in close()
        # The pipe ends become fds 3 and 4 in Chromium; a small exec trampoline moves them (a preexec_fn
        # is unsafe with threads, and POSIX sh redirects only single-digit descriptors).
        argv = [
            sys.executable,
            "-c",
            _TRAMPOLINE,
            str(to_browser),
            str(from_browser),
            executable,
            *ARGS,
            f"--user-data-dir={profile / 'data'}",
            *extra,
        ]
        self.process = subprocess.Popen(
            argv,
            pass_fds=(to_browser, from_browser),
            stdin=subprocess.DEVNULL,
            stdout=self._stderr,
            stderr=self._stderr,
        )
        os.close(to_browser)
        os.close(from_browser)
        self._next = 0
        self._answers: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buffer = b""
        with os.fdopen(self._out, "rb", buffering=0) as stream:
            while chunk := stream.read(65536):
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                with self._changed:
                    for raw in messages:
                        message = json.loads(raw)
                        if "id" in message:
                            self._answers[message["id"]] = message
                        else:
                            self.events.append(message)
                    self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> Any:
        """Send one command and wait for its answer."""
        with self._changed:
            self._next += 1
            ident = self._next
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._in, json.dumps(message).encode() + b"\0")
        with self._changed:
            done = self._changed.wait_for(lambda: ident in self._answers or not self._reader.is_alive(), 60)
            answer = self._answers.pop(ident, None)
        if not done or answer is None:
            raise CDPError(f"no answer to {method}")
        if "error" in answer:
            raise CDPError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def wait_event(self, method: str, session: str, start: int = 0) -> dict[str, Any]:
        """The first event `method` of `session` from index `start` of `events` on (waits for it)."""

        def found() -> dict[str, Any] | None:
            for event in self.events[start:]:
                if event.get("method") == method and event.get("sessionId") == session:
                    return event
            return None

        with self._changed:
            self._changed.wait_for(lambda: found() is not None or not self._reader.is_alive(), 60)
            event = found()
        if event is None:
            raise CDPError(f"no {method} event")
        return event

    def open(self, url: str) -> Page:
        """A new tab showing `url`, loaded."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Network"):
            self.call(f"{domain}.enable", session=session)
        page = Page(self, session)
        page.goto(url)
        return page

    def close(self) -> None:
        """Quit Chromium and close the pipes."""
        try:
            self.call("Browser.close")
        except (CDPError, OSError):
            self.process.kill()
        self.process.wait(timeout=30)
        os.close(self._in)
        self._reader.join(timeout=30)
        self._stderr.close()


class Page:
    """One tab."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    def goto(self, url: str) -> None:
        """Navigate and wait for the load event."""
        start = len(self.browser.events)
        self.browser.call("Page.navigate", {"url": url}, self.session)
        self.browser.wait_event("Page.loadEventFired", self.session, start)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited)."""
        result = self.browser.call(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            self.session,
        )
        if "exceptionDetails" in result:
            raise CDPError(str(result["exceptionDetails"].get("exception", result["exceptionDetails"])))
        return result["result"].get("value")

    def wait_for(self, condition: str, timeout_ms: int = 20000) -> None:
        """Until the JavaScript `condition` holds (checked on every change of the page)."""
        self.evaluate(_WAIT % (condition, json.dumps(condition), timeout_ms))

    def click(self, selector: str) -> None:
        """A real mouse click at the centre of the element `selector` names."""
        box = self.evaluate(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)}); if (!el) return null;"
            " el.scrollIntoView({block: 'center'}); const r = el.getBoundingClientRect();"
            " return [r.left + r.width / 2, r.top + r.height / 2]; })()"
        )
        if box is None:
            raise CDPError(f"nothing matches {selector}")
        x, y = box
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            params = {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}
            self.browser.call("Input.dispatchMouseEvent", params, self.session)

    def text(self, selector: str) -> str:
        """The text of the first element `selector` names ('' when none)."""
        found = self.evaluate(f"(document.querySelector({json.dumps(selector)}) || {{}}).textContent || ''")
        return str(found)

    def requested(self) -> list[str]:
        """Every URL this tab asked the network for, in order."""
        return [
            e["params"]["request"]["url"]
            for e in self.browser.events
            if e.get("method") == "Network.requestWillBeSent" and e.get("sessionId") == self.session
        ]

    def screenshot(self, path: Path, *, width: int = 1280, height: int = 900, full: bool = True) -> None:
        """A PNG of the page (the whole page when `full`)."""
        self.browser.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            self.session,
        )
        shot = self.browser.call(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": full}, self.session
        )
        path.write_bytes(base64.b64decode(shot["data"]))


def _high_pipe() -> tuple[int, int]:
    """A pipe whose ends are fds 10 and up, so moving them onto 3 and 4 never clobbers one with the other."""
    import fcntl

    ends = []
    for fd in os.pipe():
        moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
        os.close(fd)
        ends.append(moved)
    return ends[0], ends[1]
