"""Helpers for driving the web page in a real browser: Debian's Chromium through Playwright.

No browser is downloaded: Playwright's Python package drives ``/usr/bin/chromium``, which is
installed with apt when missing and we are root. Also used by ``scripts/screenshot_web.py``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parent.parent


def ensure_chromium(timeout: float = 600.0) -> tuple[str | None, str]:
    """Return ``(path, "")`` of a usable Chromium, installing Debian's package when needed.

    Returns ``(None, reason)`` when Chromium is missing and cannot be installed here (not root,
    no apt-get, or the install failed), or when Playwright's Python package is missing.
    """
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return None, "playwright's Python package is not installed (pip install -e '.[dev]')"
    if os.path.exists(CHROMIUM):
        return CHROMIUM, ""
    found = shutil.which("chromium")
    if found:
        return found, ""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None, f"{CHROMIUM} is missing and we are not root to apt-get install chromium"
    apt = shutil.which("apt-get")
    if apt is None:
        return None, f"{CHROMIUM} is missing and there is no apt-get to install it"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        proc = subprocess.run(
            [apt, "install", "-y", "chromium"],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:  # the package lists may be missing on a fresh machine
            subprocess.run([apt, "update"], env=env, capture_output=True, timeout=timeout)
            proc = subprocess.run(
                [apt, "install", "-y", "chromium"],
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"apt-get install chromium failed: {exc}"
    if proc.returncode != 0 or not os.path.exists(CHROMIUM):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return None, "apt-get install chromium failed: " + " | ".join(tail)
    return CHROMIUM, ""


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(models: list[str], timeout: float = 60.0, extra: tuple[str, ...] = ()) -> Iterator[str]:
    """Run ``restoreae serve`` (a real uvicorn process) on a free loopback port; yield its URL.

    ``models``: ``--model`` values. The process is stopped on exit; its output is shown when it
    fails to start.
    """
    port = free_port()
    cmd = [sys.executable, "-m", "restoreae.cli", "serve", "--port", str(port)]
    cmd += ["--log-level", "warning", *extra]
    for m in models:
        cmd += ["--model", m]
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), PYTHONUNBUFFERED="1")
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"restoreae-serve-{port}.log", "w+")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"restoreae serve exited with {proc.returncode}:\n{log.read()}")
            try:
                with urllib.request.urlopen(url + "/api/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"restoreae serve did not answer in {timeout} s:\n{log.read()}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        Path(log.name).unlink(missing_ok=True)


@contextmanager
def chromium_page(executable: str, width: int = 1100, height: int = 900) -> Iterator[object]:
    """A Playwright page in headless Chromium with a fresh profile (Playwright makes a temporary
    ``--user-data-dir`` for every launch and removes it afterwards)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()
