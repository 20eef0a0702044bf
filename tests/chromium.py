"""Headless Chromium driven over the DevTools protocol through a pipe: no browser-automation package needed.

Started with ``--remote-debugging-pipe``, Chromium reads protocol commands (JSON, each ended by a NUL
byte) on file descriptor 3 and writes replies and events on descriptor 4. ``Browser`` starts it with a
fresh profile, ``Browser.open`` loads a page, ``Page.evaluate`` runs JavaScript in it and returns the
value, ``Page.screenshot`` writes a PNG.

Also a command, to screenshot a report for the docs::

    python tests/chromium.py results/report.html docs/report.png
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
COMMAND_FD, REPLY_FD = 3, 4


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def chromium_or_skip() -> str:
    """Chromium's executable for a browser test: installed here when missing and we are root, else the test skips."""
    import pytest

    executable = find_chromium()
    if executable is None and os.geteuid() == 0:
        script = Path(__file__).resolve().parents[1] / "scripts" / "install_chromium.sh"
        subprocess.run(["bash", str(script)], check=False)
        executable = find_chromium()
    if executable is None:
        pytest.skip("chromium is not installed and could not be installed (needs root and apt-get: scripts/install_chromium.sh)")
    return executable


class ProtocolError(RuntimeError):
    pass


class Browser:
    def __init__(self, executable: str, width: int = 1600, height: int = 1000, timeout: float = 30.0):
        self.executable, self.width, self.height, self.timeout = executable, width, height, timeout
        self._next_id = 0
        self._buffer = b""
        self._events: list[dict] = []

    def __enter__(self) -> Browser:
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-profile-")
        commands_read, self._commands = os.pipe()
        self._replies, replies_write = os.pipe()
        # Chromium's ends above 9, so that moving them onto 3 and 4 cannot overwrite one another
        commands_read, replies_write = (self._above_nine(fd) for fd in (commands_read, replies_write))
        # bash moves the pipe ends onto the descriptors Chromium expects, then becomes Chromium
        on_protocol_fds = (f'exec "$@" {COMMAND_FD}<&{commands_read} {REPLY_FD}>&{replies_write} '
                           f'{commands_read}<&- {replies_write}>&-')
        arguments = [self.executable, *FLAGS, f"--user-data-dir={self._profile.name}", "--remote-debugging-pipe",
                     f"--window-size={self.width},{self.height}", "about:blank"]
        self.log_path = Path(self._profile.name) / "chromium.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(["bash", "-c", on_protocol_fds, "chromium", *arguments], stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT, pass_fds=(commands_read, replies_write))
        os.close(commands_read)
        os.close(replies_write)
        return self

    @staticmethod
    def _above_nine(fd: int) -> int:
        high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
        os.close(fd)
        return high

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(Exception):
            self.send("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._commands)
        os.close(self._replies)
        self._profile.cleanup()

    # -- the protocol ------------------------------------------------------------------------
    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise ProtocolError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def wait_event(self, method: str, session: str | None = None) -> dict:
        while True:
            for event in self._events:
                if event.get("method") == method and event.get("sessionId") == session:
                    self._events.remove(event)
                    return event.get("params", {})
            self._events.append(self._receive())

    def _receive(self) -> dict:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._replies], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(self._replies, 1 << 20) if ready else b""
            if not chunk:
                state = "timed out" if not ready else f"exited ({self.process.poll()})"
                raise ProtocolError(f"no reply from Chromium: {state}; its log: {self.log_path.read_text()[-2000:]}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def open(self, url: str) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        page.send("Page.enable")
        page.send("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False})
        page.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired", session)
        return page


class Page:
    def __init__(self, browser: Browser, session: str):
        self.browser, self.session = browser, session

    def send(self, method: str, params: dict | None = None) -> dict:
        return self.browser.send(method, params, self.session)

    def evaluate(self, expression: str, context: int | None = None):
        """The value of a JavaScript expression (a promise is awaited); a thrown error raises ProtocolError.

        ``context``: run it in that execution context (``frame_context``) instead of the page's.
        """
        params = {"expression": expression, "awaitPromise": True, "returnByValue": True}
        if context is not None:
            params["contextId"] = context
        reply = self.send("Runtime.evaluate", params)
        if "exceptionDetails" in reply:
            raise ProtocolError(f"{expression[:80]}...: {reply['exceptionDetails'].get('exception', {}).get('description')}")
        return reply["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20.0, context: int | None = None):
        """Poll ``expression`` until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while not (value := self.evaluate(expression, context)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout:g} s: {expression}")
            time.sleep(0.1)
        return value

    def frame_context(self, url_prefix: str, timeout: float = 20.0) -> int:
        """An execution context in the page's child frame whose URL starts with ``url_prefix``, once the
        frame is attached (the iframe element exists before its frame does).

        The protocol reaches into a frame of another origin (a ``data:`` iframe) where the page's
        own JavaScript cannot.
        """
        deadline = time.monotonic() + timeout
        while True:
            children = self.send("Page.getFrameTree")["frameTree"].get("childFrames", [])
            frames = [child["frame"]["id"] for child in children if child["frame"]["url"].startswith(url_prefix)]
            if frames:
                return self.send("Page.createIsolatedWorld", {"frameId": frames[-1]})["executionContextId"]
            if time.monotonic() > deadline:
                raise ProtocolError(f"no child frame with a URL starting {url_prefix[:60]!r} after {timeout:g} s")
            time.sleep(0.1)

    def screenshot(self, path: Path) -> None:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        Path(path).write_bytes(base64.b64decode(data))


def screenshot_report(report: Path, out: Path, executable: str) -> None:
    """The report's landing page (front page text and workflow graph) once its app has rendered."""
    with Browser(executable) as browser:
        page = browser.open(Path(report).resolve().as_uri())
        page.wait_for("document.querySelector('#app table') !== null")
        page.screenshot(out)


if __name__ == "__main__":
    executable = find_chromium()
    if executable is None:
        sys.exit("chromium not found (as root: bash scripts/install_chromium.sh)")
    screenshot_report(Path(sys.argv[1]), Path(sys.argv[2]), executable)
    print(f"wrote {sys.argv[2]}")
