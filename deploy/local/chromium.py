"""Debian's headless Chromium for the browser tests and ``make screenshots``.

Playwright drives it through ``executable_path``: Playwright's own browser download needs the
internet, Debian's ``chromium`` package only the Debian mirror. A missing browser is
installed with apt-get when we are root (CI on a fresh machine); otherwise the error says
what to run.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING

from deploy.local._proc import apt_install

if TYPE_CHECKING:
    from playwright.async_api import Browser, Playwright

CHROMIUM = Path("/usr/bin/chromium")
PACKAGE = "chromium"


def _usable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def ensure_chromium(path: Path = CHROMIUM) -> Path:
    """The Chromium executable, installed from Debian's ``chromium`` package when it is
    missing (needs root; otherwise a RuntimeError names the command to run)."""
    if _usable(path):
        return path
    if os.geteuid() != 0:
        raise RuntimeError(
            f"{path} is missing and this is not root: run "
            f"`sudo apt-get install -y --no-install-recommends {PACKAGE}`"
        )
    apt_install(PACKAGE)
    if not _usable(path):
        raise RuntimeError(f"apt-get installed {PACKAGE} but {path} is still missing")
    return path


def launch_args() -> list[str]:
    """Chromium's command-line switches here: as root its sandbox refuses to start."""
    return ["--no-sandbox"] if os.geteuid() == 0 else []


async def launch_chromium(playwright: Playwright) -> Browser:
    """A headless Chromium (installed first when missing), driven by ``playwright``."""
    executable = await asyncio.to_thread(ensure_chromium)
    return await playwright.chromium.launch(
        executable_path=executable, headless=True, args=launch_args()
    )
