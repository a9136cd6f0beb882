"""The Prefect UI as a person sees it: headless Chromium renders the deployments page, we keep
a screenshot and read the rendered page for the deployment names."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulse_local.config import Settings
from pulse_local.errors import ToolMissing
from pulse_local.stack.process import end_child_group

#: Flags for a closed network: without the background-networking ones Chromium keeps trying
#: Google's hosts; as root it needs --no-sandbox.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--window-size=1400,900",
]


@dataclass(frozen=True)
class UiCapture:
    """What the deployments page showed."""

    url: str
    screenshot: Path
    html: str

    def lists(self, name: str) -> bool:
        return name in self.html


def chromium() -> str:
    """Path of a Chromium binary, or a named error with the install command."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise ToolMissing("Chromium is needed for the UI check: `apt-get install chromium` "
                      "(or `brew install --cask chromium`)")


class _DevTools:
    """Chromium's DevTools protocol over its WebSocket: one page, commands answered in order."""

    def __init__(self, ws: Any, session: str) -> None:
        self.ws, self.session, self._id = ws, session, 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv(timeout=60))
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"DevTools {method}: {reply['error']}")
                return dict(reply.get("result", {}))


def _devtools_url(proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    """The browser's WebSocket address, from the line Chromium prints when it listens."""
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if line.startswith("DevTools listening on "):
            return line.split(" on ", 1)[1].strip()
        if not line and proc.poll() is not None:
            break
    raise RuntimeError("Chromium did not open its DevTools endpoint")


def _rendered_html(page: _DevTools, settle: float = 2.0, timeout: float = 45.0) -> str:
    """The page's HTML once it stopped changing for `settle` seconds (the UI renders its
    lists after its API answers), or at `timeout`."""
    deadline = time.monotonic() + timeout
    last, since = "", time.monotonic()
    while time.monotonic() < deadline:
        html = str(page.call("Runtime.evaluate", expression="document.documentElement.outerHTML",
                             returnByValue=True)["result"].get("value", ""))
        if html != last:
            last, since = html, time.monotonic()
        elif time.monotonic() - since >= settle:
            break
        time.sleep(0.3)
    return last


def capture_deployments_page(settings: Settings, screenshot: Path) -> UiCapture:
    """Render the Prefect UI's deployments page as the stack's user sees it once signed in
    (its API asks for the stack's basic-auth string: every request of the page carries it,
    set through Chromium's DevTools protocol, never on a command line); save a PNG; return
    the rendered HTML."""
    from websockets.sync.client import connect

    from pulse_local.endpoints import prefect_auth_headers

    url = f"http://{settings.host}:{settings.prefect_port}/deployments"
    binary = chromium()
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pulse-chromium-") as profile:
        proc = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
             "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True)  # its renderers and helpers in one group, stopped together
        try:
            with connect(_devtools_url(proc), max_size=None) as ws:
                browser = _DevTools(ws, "")
                target = browser.call("Target.createTarget", url="about:blank")["targetId"]
                session = browser.call("Target.attachToTarget", targetId=target,
                                       flatten=True)["sessionId"]
                page = _DevTools(ws, session)
                page.call("Network.enable")
                page.call("Network.setExtraHTTPHeaders", headers=prefect_auth_headers(settings))
                page.call("Page.enable")
                page.call("Page.navigate", url=url)
                html = _rendered_html(page)
                png = page.call("Page.captureScreenshot", format="png")["data"]
                screenshot.write_bytes(base64.b64decode(png))
        finally:
            # every Chromium process gone before the profile directory is removed: a helper
            # still writing into it failed the cleanup ("Directory not empty: 'Default'")
            end_child_group(proc)
    return UiCapture(url, screenshot, html)
