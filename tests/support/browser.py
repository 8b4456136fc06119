"""Real-browser tests: Debian's headless Chromium driven by Selenium.

The tests bring the browser themselves. On a fresh machine `ensure_chromium()` installs
the Debian packages `chromium` and `chromium-driver` with apt; a failed install raises,
so a browser test fails loudly instead of being skipped.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

# Where the Debian packages `chromium` and `chromium-driver` put their programs.
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PACKAGES = ("chromium", "chromium-driver")
INSTALL_TIMEOUT = 900.0
PAGE_LOAD_TIMEOUT = 30.0

_LOCK = Path(tempfile.gettempdir()) / "mas-tests-chromium-install.lock"


def _installed() -> bool:
    return all(os.access(path, os.X_OK) for path in (CHROMIUM, CHROMEDRIVER))


def _as_root(command: list[str]) -> list[str]:
    """`command` as root: as is when we are root, else through `sudo -n` when there is one.

    `env` carries DEBIAN_FRONTEND past sudo's env_reset; `-n` makes a sudo that wants a
    password fail at once instead of waiting for one."""
    command = ["env", "DEBIAN_FRONTEND=noninteractive", *command]
    if os.geteuid() != 0 and shutil.which("sudo"):
        return ["sudo", "-n", *command]
    return command


def _run(command: list[str]) -> None:
    """Run one install step; raise RuntimeError naming it and its stderr's tail if it fails."""
    full = _as_root(command)
    shown = " ".join(full)
    try:
        done = subprocess.run(
            full,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RuntimeError(f"installing Chromium failed: `{shown}`: {error}") from error
    if done.returncode != 0:
        tail = (done.stderr or done.stdout)[-2000:]
        raise RuntimeError(
            f"installing Chromium failed: `{shown}` exited {done.returncode}:\n{tail}"
        )


def ensure_chromium() -> tuple[str, str]:
    """The paths of Chromium and its chromedriver, installed with apt if either is missing.

    An exclusive lock on a file in the temp dir keeps two pytest processes from running
    apt at once (the second would fail on apt's own lock); whoever waited checks again
    and finds the packages the first one installed."""
    if not _installed():
        with _LOCK.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if not _installed():
                    _run(["apt-get", "update"])
                    _run(["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES])
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        if not _installed():
            raise RuntimeError(
                f"apt installed {' '.join(PACKAGES)} but {CHROMIUM} or {CHROMEDRIVER} is missing"
            )
    return str(CHROMIUM), str(CHROMEDRIVER)


def headless_chrome(width: int = 1280, height: int = 900) -> webdriver.Chrome:
    """A new headless Chromium of `width` x `height`; the caller must `quit()` it.

    The binary and the driver are named explicitly: left to find them itself, Selenium
    Manager would try to download a Chrome and a driver, and the tests have no internet
    to download them from. `--no-sandbox` lets Chromium run as root (as in containers),
    `--disable-dev-shm-usage` keeps it off a small /dev/shm."""
    chromium, chromedriver = ensure_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT)
    return driver
