"""The Prefect UI as a person sees it: headless Chromium renders the deployments page, we keep
a screenshot and read the rendered page for the deployment names."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pulse_local.config import Settings
from pulse_local.errors import ToolMissing

#: Flags for a closed network: without the background-networking ones Chromium keeps trying
#: Google's hosts; as root it needs --no-sandbox.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--window-size=1400,900", "--virtual-time-budget=15000",
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


def capture_deployments_page(settings: Settings, screenshot: Path) -> UiCapture:
    """Render the Prefect UI's deployments page; save a PNG; return the rendered HTML."""
    url = f"http://{settings.host}:{settings.prefect_port}/deployments"
    binary = chromium()
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pulse-chromium-") as profile:
        base = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
        dom = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True,
                             timeout=90, check=True)
        subprocess.run([*base, f"--screenshot={screenshot}", url], capture_output=True,
                       timeout=90, check=True)
    return UiCapture(url, screenshot, dom.stdout)
