"""The report and the explorer in a real browser: headless Chromium driven by Selenium.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install chromium chromium-driver``)
and the ``browser`` extra (selenium, gradio); skipped, with the reason, when any is missing.
Screenshots go to the test's tmp folder; ``GENZOO_SCREENSHOTS=DIR`` keeps a copy (the README's
pictures come from there).
"""

from __future__ import annotations

import gc
import io
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import genzoo
from genzoo.cli import main
from genzoo.runs import load_run

from .test_contract import tiny_config

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                       reason="headless Chromium not installed (apt-get install chromium chromium-driver)"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # websockets/uvicorn inside gradio and selenium
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),  # gradio's server sockets at exit
]
selenium = pytest.importorskip("selenium", reason="the browser extra is not installed (pip install genzoo[browser])")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

WAIT = 30  # seconds for the page or an answer: generous, the machine's two cores may be busy


@pytest.fixture(scope="module")
def browser():
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not try to download a driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 "--disable-extensions", "--window-size=1280,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    driver.set_page_load_timeout(WAIT)
    yield driver
    driver.quit()
    gc.collect()


def console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def screenshot(driver, path: Path) -> np.ndarray:
    """Save a screenshot (and copy it to $GENZOO_SCREENSHOTS) and return its pixels."""
    png = driver.get_screenshot_as_png()
    path.write_bytes(png)
    if os.environ.get("GENZOO_SCREENSHOTS"):
        shutil.copy(path, Path(os.environ["GENZOO_SCREENSHOTS"]) / path.name)
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float32)


def not_blank(pixels: np.ndarray) -> bool:
    return pixels.std() > 10 and len(np.unique(pixels.astype(np.uint8))) > 20


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    made = {}
    for name in ("ae", "cvae", "context-encoder"):  # 60 steps: enough for codes that decode differently
        made[name] = root / name
        genzoo.train(tiny_config(name, epochs=2, max_batches=30, eval_batches=1), made[name], progress=False)
    return made


def test_report_renders_with_its_pictures_and_no_console_errors(browser, runs, tmp_path):
    out = tmp_path / "report.html"
    assert main(["report", str(runs["cvae"]), str(runs["context-encoder"]), "--out", str(out)]) == 0
    browser.get(out.as_uri())
    images = browser.find_elements(By.TAG_NAME, "img")
    assert len(images) >= 6
    assert all(browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)
               for img in images)
    assert "cvae" in browser.title or "cvae" in browser.find_element(By.TAG_NAME, "body").text
    assert not console_errors(browser)
    assert not_blank(screenshot(browser, tmp_path / "report.png"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def explorer_app(runs):
    pytest.importorskip("gradio", reason="the explore extra is not installed (pip install genzoo[explore])")
    from genzoo.explore import Explorer, build_app, theme

    apps = []

    def start(name):
        app = build_app(Explorer(load_run(runs[name])))
        port = free_port()
        app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, theme=theme(),
                   ssr_mode=False, footer_links=[])
        apps.append(app)
        return f"http://127.0.0.1:{port}/"

    yield start
    for app in apps:
        app.close()
    gc.collect()  # Gradio's server leaves sockets and an event loop to the collector: collect them here,
    #               under this module's warning filters, not in whichever test runs next


def image_source(driver, elem_id: str) -> str:
    images = driver.find_elements(By.CSS_SELECTOR, f"#{elem_id} img")
    return images[0].get_attribute("src") if images else ""


def wait_for_change(driver, elem_id: str, before: str) -> str:
    WebDriverWait(driver, WAIT).until(lambda d: image_source(d, elem_id) not in ("", before))
    return image_source(driver, elem_id)


def click_at(driver, element, dx: int, dy: int) -> None:
    """Click ``element`` at (dx, dy) pixels from its centre."""
    ActionChains(driver).move_to_element_with_offset(element, dx, dy).click().perform()


def test_explorer_latent_map_click_decodes_the_point_under_the_cursor(browser, explorer_app, tmp_path):
    browser.get(explorer_app("ae"))
    WebDriverWait(browser, WAIT).until(lambda d: image_source(d, "latent-map") and image_source(d, "decoded"))
    latent_map = browser.find_element(By.CSS_SELECTOR, "#latent-map img")
    assert browser.execute_script("return arguments[0].naturalWidth", latent_map) > 0
    before = image_source(browser, "decoded")
    side = latent_map.size["width"]
    click_at(browser, latent_map, -side // 3, side // 3)
    after = wait_for_change(browser, "decoded", before)
    click_at(browser, latent_map, side // 3, -side // 3)
    wait_for_change(browser, "decoded", after)
    assert not_blank(screenshot(browser, tmp_path / "explore-map.png"))
    assert not console_errors(browser)


def test_explorer_label_picker_changes_the_digit(browser, explorer_app, tmp_path):
    browser.get(explorer_app("cvae"))
    WebDriverWait(browser, WAIT).until(lambda d: image_source(d, "decoded"))
    labels = browser.find_elements(By.CSS_SELECTOR, "#label-picker label")
    before = image_source(browser, "decoded")
    labels[-1].click()  # the decoded point, now with the last label
    wait_for_change(browser, "decoded", before)
    browser.find_element(By.XPATH, "//button[@role='tab'][contains(., 'Samples')]").click()
    WebDriverWait(browser, WAIT).until(lambda d: image_source(d, "samples"))
    before = image_source(browser, "samples")
    labels[0].click()
    wait_for_change(browser, "samples", before)
    assert not_blank(screenshot(browser, tmp_path / "explore-samples.png"))
    assert not console_errors(browser)


def test_explorer_inpainting_tab_fills_holes(browser, explorer_app, tmp_path):
    browser.get(explorer_app("context-encoder"))
    tab = WebDriverWait(browser, WAIT).until(
        lambda d: d.find_elements(By.XPATH, "//button[@role='tab'][contains(., 'Inpainting')]"))
    tab[0].click()
    button = WebDriverWait(browser, WAIT).until(
        lambda d: d.find_elements(By.XPATH, "//button[contains(., 'random hole')]"))
    before = image_source(browser, "inpainted")
    button[0].click()
    wait_for_change(browser, "inpainted", before)
    assert not_blank(screenshot(browser, tmp_path / "explore-inpainting.png"))
    assert not console_errors(browser)
