"""Superset's REST API and its pages in headless Chromium, for tests and benchmarks.

The REST session logs in as the stack's admin (Bearer token, CSRF token on writes); the browser
is Debian's chromium driven by Playwright (docs/platform.md: never `playwright install`).
"""
from __future__ import annotations

import contextlib
import json
import time
import uuid
from urllib.parse import parse_qs, urlparse

import requests

from testkit.browser import chromium_page

class SupersetAPI:
    def __init__(self, base_url: str, username: str = "admin", password: str = "admin"):
        self.base = base_url.rstrip("/")
        self.credentials = {"username": username, "password": password, "provider": "db", "refresh": False}
        self.session = requests.Session()
        self._login()

    def _login(self) -> None:
        self.session.headers.pop("Authorization", None)
        login = self.session.post(f"{self.base}/api/v1/security/login", timeout=30, json=self.credentials)
        login.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        csrf = self.session.get(f"{self.base}/api/v1/security/csrf_token/", timeout=30)
        csrf.raise_for_status()
        self.session.headers.update({"X-CSRFToken": csrf.json()["result"], "Referer": self.base})

    def _send(self, method: str, path: str, **kwargs) -> requests.Response:
        response = self.session.request(method, f"{self.base}{path}", timeout=120, **kwargs)
        if response.status_code == 401:  # the access token lives 15 minutes: log in again, once
            self._login()
            response = self.session.request(method, f"{self.base}{path}", timeout=120, **kwargs)
        return response

    def get(self, path: str, **params) -> dict:
        response = self._send("GET", path, params=params)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict) -> requests.Response:
        return self._send("POST", path, json=body)

    def listing(self, resource: str) -> list[dict]:
        """Every item of /api/v1/<resource>/ (one page of up to 100 is all lakewatch has)."""
        return self.get(f"/api/v1/{resource}/", q="(page_size:100)")["result"]

    def chart_data(self, chart_id: int) -> dict:
        """The chart's saved query, run now (force: not from a cache)."""
        return self.get(f"/api/v1/chart/{chart_id}/data/", force="true")

    def sql_lab(self, database_id: int, sql: str) -> dict:
        response = self.post("/api/v1/sqllab/execute/", {
            "database_id": database_id, "sql": sql, "schema": "market", "runAsync": False,
            "queryLimit": 1000, "client_id": uuid.uuid4().hex[:10], "tab": "api"})  # unique per query
        assert response.status_code == 200, response.text[:500]
        return response.json()


@contextlib.contextmanager
def browser_page(base_url: str, username: str = "admin", password: str = "admin"):
    """A logged-in Superset page in headless Debian chromium."""
    with chromium_page() as page:
        _log_in(page, base_url, username, password)
        yield page


def _log_in(page, base_url: str, username: str, password: str, attempts: int = 3) -> None:
    """Log in through the form. Superset keeps its session in a cookie, so an answer to a request
    the login page sent before the form was submitted can arrive after the login and replace the
    new session with the anonymous one (CI saw the welcome page bounce back to the login page):
    wait for the page to be idle before submitting, and log in again if the session did not stick."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(attempts):
        page.goto(f"{base_url}/login/")
        page.wait_for_load_state("networkidle", timeout=60_000)
        page.fill("input#username", username)
        page.fill("input#password", password)
        page.keyboard.press("Enter")
        with contextlib.suppress(PlaywrightTimeout):
            page.wait_for_url("**/superset/welcome/**", timeout=30_000)
            page.wait_for_load_state("networkidle", timeout=60_000)
        if "/superset/welcome/" in page.url:
            return
    raise RuntimeError(f"could not log in to Superset as {username!r} in {attempts} attempts; the page is {page.url}")


def open_dashboard(page, base_url: str, slug: str, charts: int = 1, timeout: float = 120) -> list:
    """Open a dashboard and wait until `charts` charts have their data and the network is idle;
    returns the chart-data responses. Network idle alone is not enough: on a busy machine the
    page can sit for half a second running Superset's JavaScript before any chart asks for data
    (CI saw a dashboard "idle" with no chart requested yet)."""
    responses = []

    def keep(response):
        if "/api/v1/chart/data" in response.url:
            responses.append(response)

    page.on("response", keep)
    try:
        page.goto(f"{base_url}/superset/dashboard/{slug}/")
        deadline = time.monotonic() + timeout
        while len({chart_of(r.url) for r in responses} - {None}) < charts and time.monotonic() < deadline:
            page.wait_for_timeout(200)
        page.wait_for_load_state("networkidle", timeout=timeout * 1000)
    finally:
        page.remove_listener("response", keep)
    return responses


def assert_dashboard_renders(page, api: SupersetAPI, slug: str, screenshot=None) -> None:
    """Open the dashboard as a user does: every chart asked for its data and got HTTP 200, drew
    itself, and no error box is on the page (a chart whose query failed shows one)."""
    charts = api.get(f"/api/v1/dashboard/{slug}/charts")["result"]
    responses = open_dashboard(page, api.base, slug, charts=len(charts))
    assert all(r.status == 200 for r in responses), [(r.status, r.url) for r in responses]
    asked = {chart_of(r.url) for r in responses}
    assert {c["id"] for c in charts} <= asked, f"charts without a data request on {page.url}"
    for chart in charts:  # React may draw a chart a moment after its data arrived
        chart_holder(page, chart["slice_name"]).first.wait_for(state="visible", timeout=30_000)
    if screenshot is not None:
        page.screenshot(path=str(screenshot), full_page=True)
    assert page.locator("[role='alert']").count() == 0, page.locator("[role='alert']").all_inner_texts()


def chart_of(url: str) -> int | None:
    """The chart id a dashboard's /api/v1/chart/data request is for (its form_data's slice_id);
    None for other requests, such as a native filter's value list."""
    form_data = parse_qs(urlparse(url).query).get("form_data")
    return json.loads(form_data[0]).get("slice_id") if "/api/v1/chart/data" in url and form_data else None


def chart_holder(page, chart_name: str):
    return page.locator("[data-test='dashboard-component-chart-holder']").filter(has_text=chart_name)
