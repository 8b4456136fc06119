"""The real-browser support works: headless Chromium loads a local page, runs its
JavaScript, takes typing and a click, and saves a screenshot."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.browser import headless_chrome

PAGE = b"""<!doctype html>
<html>
<head><meta charset="utf-8"><title>browser support</title></head>
<body>
  <h1 id="title">Loading</h1>
  <form id="form">
    <input id="name" type="text" name="name">
    <button id="submit" type="submit">Send</button>
  </form>
  <p id="out"></p>
  <script>
    window.addEventListener("load", () => {
      document.getElementById("title").textContent = "Ready";
    });
    document.getElementById("form").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = document.getElementById("name").value;
      document.getElementById("out").textContent = "Hello, " + value;
    });
  </script>
</body>
</html>
"""


class _PageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: object) -> None:  # keep pytest's output quiet
        pass


@pytest.fixture
def page_url() -> Iterator[str]:
    """The page, served from a thread on a free local port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# On a fresh machine the first call installs Chromium with apt: allow for that (two apt
# steps of up to 900 s each) beyond the suite's 600 s default.
@pytest.mark.timeout(1900)
def test_headless_chromium_runs_javascript_and_takes_input(page_url: str, tmp_path: Path) -> None:
    driver = headless_chrome()
    try:
        driver.get(page_url)
        WebDriverWait(driver, 10).until(
            expected_conditions.text_to_be_present_in_element((By.ID, "title"), "Ready")
        )
        assert driver.find_element(By.ID, "title").text == "Ready"

        driver.find_element(By.ID, "name").send_keys("Ada")
        driver.find_element(By.ID, "submit").click()
        WebDriverWait(driver, 10).until(
            expected_conditions.text_to_be_present_in_element((By.ID, "out"), "Hello")
        )
        assert driver.find_element(By.ID, "out").text == "Hello, Ada"

        screenshot = tmp_path / "page.png"
        assert driver.save_screenshot(str(screenshot))
        assert screenshot.is_file()
        data = screenshot.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert len(data) > 8
    finally:
        driver.quit()
