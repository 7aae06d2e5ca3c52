"""The README's browser screenshots: the explorer of zoo:vae-2d after a click on its latent map, and
the report of zoo:vae-2d and zoo:cvae-2d, in headless Chromium (apt-get install chromium
chromium-driver; pip install 'genzoo[test]').

    .venv/bin/python scripts/make_screenshots.py            # writes docs/explore-map.png, docs/report.png
"""

import os
import socket
import sys
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from genzoo.cli import main
from genzoo.explore import Explorer, build_app, theme
from genzoo.runs import load_run

DOCS = Path(__file__).resolve().parents[1] / "docs"


def browser(width: int, height: int):
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--hide-scrollbars", f"--window-size={width},{height}"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path="/usr/bin/chromedriver"))


def explorer_shot(out: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = build_app(Explorer(load_run("zoo:vae-2d")))
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, theme=theme(),
               ssr_mode=False, footer_links=[])
    driver = browser(1100, 900)
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        image = WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#latent-map img"))[0]
        before = driver.find_element(By.CSS_SELECTOR, "#decoded img").get_attribute("src")
        side = image.size["width"]
        ActionChains(driver).move_to_element_with_offset(image, side // 5, -side // 6).click().perform()
        WebDriverWait(driver, 30).until(
            lambda d: d.find_element(By.CSS_SELECTOR, "#decoded img").get_attribute("src") != before)
        time.sleep(1)
        driver.save_screenshot(str(out))
    finally:
        driver.quit()
        app.close()


def report_shot(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        if main(["report", "zoo:vae-2d", "zoo:cvae-2d", "--out", str(page)]) != 0:
            sys.exit(1)
        driver = browser(1100, 900)
        try:
            driver.get(page.as_uri())
            time.sleep(1)
            driver.save_screenshot(str(out))
        finally:
            driver.quit()


if __name__ == "__main__":
    explorer_shot(DOCS / "explore-map.png")
    report_shot(DOCS / "report.png")
    print(f"wrote {DOCS / 'explore-map.png'} and {DOCS / 'report.png'}")
