"""Finding (or installing) Debian's Chromium for the browser tests and screenshots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deploy.local import chromium


def test_a_present_browser_is_used_as_it_is(tmp_path: Path) -> None:
    browser = tmp_path / "chromium"
    browser.write_text("#!/bin/sh\n")
    browser.chmod(0o755)
    assert chromium.ensure_chromium(browser) == browser


def test_a_missing_browser_without_root_names_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(RuntimeError, match="apt-get install -y --no-install-recommends chromium"):
        chromium.ensure_chromium(tmp_path / "chromium")


def test_a_missing_browser_as_root_is_installed_from_debian(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    browser = tmp_path / "chromium"
    installed: list[str] = []

    def apt_install(*packages: str) -> None:
        installed.extend(packages)
        browser.write_text("#!/bin/sh\n")
        browser.chmod(0o755)

    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(chromium, "apt_install", apt_install)
    assert chromium.ensure_chromium(browser) == browser
    assert installed == ["chromium"]


def test_root_runs_chromium_without_its_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert chromium.launch_args() == ["--no-sandbox"]
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert chromium.launch_args() == []
