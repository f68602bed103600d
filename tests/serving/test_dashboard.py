"""The dashboard in a real browser: Debian's chromium and chromedriver through Selenium, against `likvid serve`
with a token, over the small company with two forecasts saved four weeks apart."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from serving import auth
from serving import state as startup

TOKEN = "dash-t0k3n"
CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def _browser_missing() -> str | None:
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        return "Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)"
    if not DRIVER.exists():
        return "Debian's chromium-driver is not installed (apt-get install chromium-driver; .ci/run installs it)"
    try:
        import selenium  # noqa: F401 - only whether it is there
    except ImportError:
        return "the selenium package is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="module")
def served(tmp_path_factory, fitted, small_company, small_loaded):
    """The small company's champions registered, two forecasts saved (at as-of less 4 weeks, and at as-of) and
    `likvid serve` running with a token on a free loopback port."""

    from tests.serving.test_service import register, serving_for_real
    from training.cash.forecast import forecast
    from training.cash.model import load_forecast_models
    from training.cash.shocks import Shocks
    from training.cash.versions import save_version

    folder = tmp_path_factory.mktemp("dashboard")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        for name in (startup.ENV_DATA, startup.ENV_AS_OF, startup.ENV_CONFIG, auth.ENV_TOKEN, startup.ENV_SOURCE):
            mp.delenv(name, raising=False)
        key = register(fitted, small_loaded, small_company)
        models = load_forecast_models(key)
        for at in (fitted["at"] - pd.Timedelta(days=28), fitted["at"]):
            rows = forecast(small_loaded, at, 13, models=models, paths=200)
            save_version(rows, key, at, Shocks(), models.versions, paths=200, seed=0)
        with serving_for_real(uri, TOKEN) as base:
            yield base


def test_page_shells_are_public_and_the_data_needs_the_token(served):
    import httpx

    assert httpx.get(f"{served}/dashboard").status_code == 200
    js = httpx.get(f"{served}/dashboard/chart.umd.min.js")
    assert js.status_code == 200 and "Chart.js" in js.text[:200]
    assert httpx.get(f"{served}/dashboard/api").status_code == 200
    assert httpx.get(f"{served}/dashboard/data").status_code == 401
    assert "http" not in httpx.get(f"{served}/dashboard").text.replace("http-equiv", "")  # nothing from another host
    data = httpx.get(f"{served}/dashboard/data", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=300).json()
    assert len(data["forecast"]) == 13 and len(data["variance"]) == 4 and data["bridge"]
    total = pd.DataFrame(data["bridge"]).groupby("week_end")["amount"].sum()
    assert len(total) == 9


def test_dashboard_renders_in_headless_chromium_with_the_token(served, tmp_path):
    missing = _browser_missing()
    if missing:
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,2200"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(DRIVER)), options=options)
    try:
        driver.get(f"{served}/dashboard")
        form = WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "token-form").is_displayed()
                                               and d.find_element(By.ID, "token-form"))
        assert "needs its API token" in driver.find_element(By.ID, "status").text
        driver.find_element(By.ID, "token").send_keys(TOKEN)
        form.submit()
        WebDriverWait(driver, 300).until(lambda d: d.execute_script("return document.body.dataset.loaded") == "yes")
        for chart in ("fan-chart", "components-chart", "variance-chart", "bridge-chart", "aging-chart", "kpi-chart"):
            assert driver.execute_script(f"return Chart.getChart('{chart}') !== undefined"), chart
            assert driver.find_element(By.ID, chart).is_displayed(), chart
        points = driver.execute_script("return Chart.getChart('fan-chart').data.datasets[1].data.length")
        assert points == 13
        bars = driver.execute_script("return Chart.getChart('bridge-chart').data.labels")
        assert "new invoices, bills and orders" in bars
        rows = driver.find_elements(By.CSS_SELECTOR, "#worklist-table tr")
        assert len(rows) == 11 and driver.find_element(By.ID, "worklist-table").is_displayed()
        assert len(driver.find_elements(By.CSS_SELECTOR, "#risk-table tr")) > 1
        assert "saved forecast" in driver.find_element(By.ID, "variance-version").text
        assert driver.execute_script("return sessionStorage.getItem('likvid-token')") == TOKEN
        shot = tmp_path / "dashboard.png"
        driver.save_screenshot(str(shot))
        print(f"dashboard screenshot: {shot}")
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"
                  and "dashboard/data" not in e["message"]]  # the first, token-less data request is a 401
        assert not errors, errors
        driver.get(f"{served}/dashboard/api")
        WebDriverWait(driver, 30).until(lambda d: "/forecast_variance" in d.find_element(By.ID, "api").text)
    finally:
        driver.quit()
