"""The web app in a real browser, started the way a user starts it: ``python cli.py app`` on a free loopback port,
driven by Debian's headless Chromium. Saves a screenshot of each page to $SLEEVE_SCREENSHOT_DIR (docs/img for README).

Needs /usr/bin/chromium and /usr/bin/chromedriver (see tests/test_analysis_browser.py); nothing is downloaded.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.test_analysis_browser import CHROMEDRIVER, CHROMIUM, READY, browser  # noqa: F401 - a fixture
from tests.webapp_helpers import app_index  # noqa: F401 - a fixture

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = Path(os.environ.get("SLEEVE_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="sleeve-app-shots-"))
"""README's docs/img/app-*.png come from a run with SLEEVE_SCREENSHOT_DIR=docs/img; a plain test run leaves the
repository untouched."""
START_SECONDS = 120
MAP_SECONDS = 300  # the first UMAP of a process compiles numba code: minutes on a busy 2-core machine

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()),
        reason=f"needs Debian's Chromium at {CHROMIUM} and {CHROMEDRIVER}: apt-get install -y chromium chromium-driver",
    ),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception:  # noqa: BLE001 - the page or server is not there yet
            value = None
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {seconds:.0f}s waiting for {what}")


@pytest.fixture(scope="module")
def server(app_index: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:  # noqa: F811
    """``python cli.py app`` serving the test index; stopped (and its log shown on failure) at the end."""
    index, cache = app_index
    port = free_port()
    log = tmp_path_factory.mktemp("app-log") / "app.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SLEEVE_CACHE_DIR": str(cache)}
    with open(log, "w") as output:
        process = subprocess.Popen(
            [sys.executable, "cli.py", "app", "--index", str(index), "--port", str(port), "--host", "127.0.0.1"],
            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok", START_SECONDS,
                 f"the app on {url}: {log.read_text()[-2000:]}")
        assert url in log.read_text()  # the command printed the URL to open
        yield url
    finally:
        os.killpg(process.pid, 15)  # the CLI and the streamlit process it started
        process.wait(timeout=30)


def css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def loaded_images(driver: Any) -> list[int]:
    """naturalWidth of every image in the page's main area (0 for one that did not load)."""
    return driver.execute_script(
        "return [...document.querySelectorAll('[data-testid=stMain] [data-testid=stImage] img')]"
        ".map(img => img.complete ? img.naturalWidth : 0)"
    )


def running(driver: Any) -> bool:
    """A script run is going on: the status widget offers to stop it, or a spinner turns."""
    return driver.execute_script(
        "const status = [...document.querySelectorAll('[data-testid=stStatusWidget]')].map(e => e.innerText).join(' ');"
        "return status.includes('Stop') || !!document.querySelector('[data-testid=stSpinner]');"
    )


def settle(driver: Any, seconds: float = 120) -> None:
    """Wait until the page has not been running for two seconds in a row (the indicator appears late)."""
    deadline = time.monotonic() + seconds
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        if running(driver):
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 2:
            return
        time.sleep(0.2)
    raise AssertionError("the page kept running")


def go_to(driver: Any, title: str) -> None:
    """Click the page's link in the sidebar (found afresh each try: a rerun may redraw the sidebar)."""
    wait_for(lambda: driver.execute_script(
        "const link = [...document.querySelectorAll('[data-testid=stSidebarNavLink]')]"
        ".find(a => a.innerText.trim().endsWith(arguments[0])); if (link) link.click(); return !!link;", title
    ), 30, f"the {title} link")
    wait_for(lambda: driver.execute_script("return document.querySelector('h1') && document.querySelector('h1').innerText")
             == title, 60, f"the {title} page")


def upload(driver: Any, path: Path) -> None:
    css(driver, "[data-testid=stFileUploaderDropzoneInput]")[0].send_keys(str(path))


def exception_boxes(driver: Any) -> list[str]:
    return [box.text for box in css(driver, "[data-testid=stException]")]


def screenshot(driver: Any, name: str, width: int = 1400) -> Path:
    """A PNG of the whole page (the window grown to the page's height, at most 2,400 px) for README."""
    driver.set_window_size(width, 1200)
    height = driver.execute_script(
        "const main = document.querySelector('[data-testid=stMain]'); return main ? main.scrollHeight : 1200"
    )
    driver.set_window_size(width, min(max(int(height) + 40, 900), 2400))
    time.sleep(1.0)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    driver.save_screenshot(str(path))
    driver.set_window_size(1400, 1200)
    return path


def a_printed_word(index: Path) -> str:
    """A word of six letters or more that OCR read on some cover of the index."""
    from index.store import load_index
    from recsys.textstore import texts_by_row

    return next(word for text in texts_by_row(load_index(index)) for word in text.split()
                if len(word) >= 6 and word.isalpha())


def test_a_user_uploads_a_cover_sees_look_alikes_and_every_page(
    server: str, browser: Any, shared_subset: Path, tmp_path: Path, app_index: tuple[Path, Path]  # noqa: F811
) -> None:
    browser.get(server)
    wait_for(lambda: css(browser, "[data-testid=stFileUploaderDropzoneInput]"), 60, "the upload box")
    query = tmp_path / "my cover.jpg"
    Image.open(sorted((shared_subset / "hip-hop").iterdir())[3]).convert("RGB").resize((220, 220)).save(query)
    upload(browser, query)
    widths = wait_for(lambda: (w := loaded_images(browser)) and len(w) == 11 and all(w) and w, 120,
                      "the query and 10 loaded result covers")
    assert len(widths) == 11 and min(widths) > 0
    assert "10 look-alikes of my cover.jpg" in browser.find_element("css selector", "[data-testid=stMain]").text
    settle(browser)
    assert exception_boxes(browser) == []
    screenshot(browser, "app-lookalikes.png")

    go_to(browser, "Genre")
    wait_for(lambda: "Read by RapidOCR" in browser.page_source, 120, "the cover text")
    settle(browser)
    assert "train-classifier" in browser.find_element("css selector", "[data-testid=stMain]").text
    screenshot(browser, "app-genre.png")

    go_to(browser, "Map")
    frame = wait_for(lambda: css(browser, "[data-testid=stIFrame]"), MAP_SECONDS, "the map report")[0]
    browser.switch_to.frame(frame)
    try:
        wait_for(lambda: browser.execute_script(READY), 60, "Bokeh to draw the map")
        drawn = browser.execute_script(
            "return Bokeh.documents[0].get_model_by_name('points').data.x.length"
        )
    finally:
        browser.switch_to.default_content()
    assert drawn == 60
    assert "Best to worst separated" in browser.find_element("css selector", "[data-testid=stMain]").text
    settle(browser)
    screenshot(browser, "app-map.png", width=1800)  # the report's two maps side by side want a wide window

    go_to(browser, "Search by words")
    word = a_printed_word(app_index[0])
    box = wait_for(lambda: css(browser, "[data-testid=stMain] input[aria-label='Words on the cover']"), 60, "the box")
    box[0].send_keys(word + "\n")
    wait_for(lambda: (w := loaded_images(browser)) and all(w), 120, f"covers carrying {word!r}")
    settle(browser)
    assert word.lower() in browser.find_element("css selector", "[data-testid=stMain]").text.lower()
    screenshot(browser, "app-words.png")

    go_to(browser, "Collection")
    wait_for(lambda: css(browser, "[data-testid=stVegaLiteChart] canvas, [data-testid=stVegaLiteChart] svg"), 60,
             "the chart of covers per genre")
    settle(browser)
    screenshot(browser, "app-collection.png")
    assert exception_boxes(browser) == []

    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == [], [entry["message"] for entry in severe]


def test_a_bad_upload_shows_the_message_in_the_page(server: str, browser: Any, tmp_path: Path) -> None:
    browser.get(server)
    wait_for(lambda: css(browser, "[data-testid=stFileUploaderDropzoneInput]"), 60, "the upload box")
    bad = tmp_path / "not a cover.jpg"
    bad.write_bytes(b"GIF89a but then nothing a decoder could use")
    upload(browser, bad)
    settle(browser)
    alert = wait_for(lambda: [a.text for a in css(browser, "[data-testid=stAlertContentError]")], 60, "an error box")
    assert "not a cover.jpg cannot be used" in alert[0]
    assert exception_boxes(browser) == []
    screenshot(browser, "app-bad-upload.png")
