"""The report in a real browser: Debian's headless Chromium opens the file, draws it, and shows covers on hover.

Needs /usr/bin/chromium and /usr/bin/chromedriver (apt-get install -y chromium chromium-driver; CI installs
them). Nothing is downloaded: selenium is pointed at both binaries, so selenium-manager never runs.
"""

from __future__ import annotations

import io
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from analysis.run import analyze
from recsys.settings import Settings
from tests.analysis_helpers import fast_cover_map, write_blob_index

QUIET = Settings(progress=False)

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
HEADLESS_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # without these the browser keeps calling home on a closed network
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
]
READY = "return !!window.Bokeh && Bokeh.documents.length > 0 && Bokeh.documents[0].is_idle"
PLOT_VIEW = "const view = Bokeh.index.get_one(Bokeh.documents[0].get_model_by_name(arguments[0]));"

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()),
    reason=f"needs Debian's Chromium at {CHROMIUM} and {CHROMEDRIVER}: apt-get install -y chromium chromium-driver",
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser-report")
    index = write_blob_index(root / "index", root / "covers", {"country": 15, "pop": 15, "rock": 15})
    out = root / "analysis.html"
    analyze(index, out=out, layout_cache_dir=root / "cache", settings=QUIET, cover_map=fast_cover_map())
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in [*HEADLESS_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser: Any, report: Path) -> Any:
    """The report freshly loaded and drawn."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(report.as_uri())
    WebDriverWait(browser, 60).until(lambda driver: driver.execute_script(READY))
    return browser


def point_on_screen(driver: Any, plot: str, row: int) -> tuple[int, int]:
    """Viewport pixel of data row ``row`` in ``plot``, after scrolling the plot into view."""
    x, y = driver.execute_script(
        PLOT_VIEW
        + """
        view.el.scrollIntoView();
        const data = Bokeh.documents[0].get_model_by_name("points").data;
        const box = view.canvas_view.el.getBoundingClientRect();
        return [box.left + view.frame.x_scale.compute(data.x[arguments[1]]),
                box.top + view.frame.y_scale.compute(data.y[arguments[1]])];
        """,
        plot,
        row,
    )
    return round(x), round(y)


def hover(driver: Any, position: tuple[int, int]) -> None:
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(position[0] - 25, position[1] - 25)  # arrive from elsewhere
    actions.pointer_action.move_to_location(*position)
    actions.perform()


def tooltips(driver: Any) -> list[dict[str, Any]]:
    """Text and thumbnail sources of the tooltips shown now (they live in Bokeh's shadow DOM)."""
    return driver.execute_script(
        """
        function* walk(root) {
          for (const el of root.querySelectorAll("*")) { yield el; if (el.shadowRoot) yield* walk(el.shadowRoot); }
        }
        const found = [];
        for (const el of walk(document)) {
          if (el.classList && el.classList.contains("tip") && el.getBoundingClientRect().width > 0) {
            const img = el.querySelector("img");
            found.push({text: el.innerText, img: img ? img.src : null,
                        img_width: img ? img.getBoundingClientRect().width : 0, loaded: img ? img.complete : false});
          }
        }
        return found;
        """
    )


def wait_for(condition: Any, seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_page_loads_without_javascript_errors(page: Any) -> None:
    entries = page.get_log("browser")
    severe = [entry for entry in entries if entry["level"] == "SEVERE"]
    assert severe == []
    assert any("bokeh" in entry["message"] for entry in entries)  # the log was really read
    assert page.title.startswith("Genre separability of 45 covers")


def test_the_maps_are_drawn_in_many_colours(page: Any) -> None:
    left, top, width, height = page.execute_script(
        PLOT_VIEW + "view.el.scrollIntoView(); const b = view.canvas_view.el.getBoundingClientRect();"
        "return [b.left, b.top, b.width, b.height];",
        "genre-map",
    )
    screenshot = Image.open(io.BytesIO(page.get_screenshot_as_png())).convert("RGB")
    scale = screenshot.width / page.execute_script("return window.innerWidth")
    plot = screenshot.crop(tuple(round(v * scale) for v in (left, top, left + width, top + height)))
    colours = plot.getcolors(1 << 24)
    assert len(colours) > 50
    # the three genre colours, not just grey anti-aliasing: pixels of clearly different hues
    hsv = np.asarray(plot.convert("HSV")).reshape(-1, 3)
    saturated = hsv[hsv[:, 1] > 100]
    hue_bins = np.bincount(saturated[:, 0] // 32, minlength=8)
    assert (hue_bins > 20).sum() >= 3


def test_hovering_a_point_shows_its_cover_genre_cluster_and_path(page: Any) -> None:
    rows = page.execute_script('return Bokeh.documents[0].get_model_by_name("points").data.path.length')
    row = rows // 2
    expected = page.execute_script(
        'const d = Bokeh.documents[0].get_model_by_name("points").data; return [d.genre[arguments[0]], d.path[arguments[0]]];',
        row,
    )
    hover(page, point_on_screen(page, "genre-map", row))
    shown = wait_for(lambda: tooltips(page))
    assert len(shown) == 1  # one tooltip, not one per genre layer stacked on each other
    tip = shown[0]
    assert tip["img"].startswith("data:image/jpeg;base64,")
    assert tip["loaded"] and tip["img_width"] > 40
    assert expected[0] in tip["text"] and "cluster" in tip["text"]
    assert Path(expected[1]).name in tip["text"]


def test_clicking_a_legend_entry_hides_that_genre_and_its_hover(page: Any) -> None:
    rock_row = page.execute_script(
        'return Bokeh.documents[0].get_model_by_name("points").data.genre.indexOf("rock")'
    )
    entry = page.execute_script(
        PLOT_VIEW
        + """
        const legend = Bokeh.index.get_one(view.model.center.find(m => m.constructor.__name__ == "Legend"));
        view.el.scrollIntoView();
        return legend.entries.find(e => e.label_el.textContent == "rock").el;
        """,
        "genre-map",
    )
    entry.click()
    shown = page.execute_script(
        PLOT_VIEW
        + """
        const data = Bokeh.documents[0].get_model_by_name("points").data;
        const drawn = view.model.renderers.find(r => r.name == "genre-map-points");
        const genres = new Set(data.genre.filter((genre, row) => drawn.view.filter.booleans[row]));
        return [...genres].sort();
        """,
        "genre-map",
    )
    assert shown == ["country", "pop"]
    hover(page, point_on_screen(page, "genre-map", rock_row))
    time.sleep(0.5)
    assert not any("rock" in tip["text"] for tip in tooltips(page))
