"""The views in a real browser: Debian's headless Chromium driven by Playwright.

The report is opened with every request that leaves the file refused; the
live page is opened on a real ``exman ui``. Without chromium or Playwright
these tests skip, except in CI (``CI=true``), where that is a failure.

Screenshots of each view go to ``tmp_path``, or to ``docs/_static`` with
``EXMAN_DOCS_SCREENSHOTS=1`` (how the docs' pictures are made).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _index_runs import make_run
from _page_helpers import HOSTILE, QUOTED, make_root, start_ui

DOCS_STATIC = Path(__file__).resolve().parent.parent / "docs" / "_static"
VIEWS = ("table", "parcoords", "interest", "curves", "run", "compare")


def _missing(problem: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {problem}", pytrace=False)
    pytest.skip(problem)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install playwright)")
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        _missing("no chromium here (apt-get install chromium)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=path)
        yield chromium
        chromium.close()


class Tab:
    """A page that records dialogs, script errors and refused requests."""

    def __init__(self, browser: Any, offline: bool = False) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 860})
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.refused: list[str] = []

        def on_dialog(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        self.page.on("dialog", on_dialog)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        if offline:

            def route(r: Any) -> None:
                if r.request.url.startswith("file:"):
                    r.continue_()
                else:
                    self.refused.append(r.request.url)
                    r.abort()

            self.page.route("**/*", route)

    def open(self, url: str) -> Any:
        self.page.goto(url)
        self.page.wait_for_selector("body[data-ready]", timeout=30000)
        return self.page

    def view(self, name: str) -> None:
        self.page.click(f"#tabs button[data-view={name}]")
        self.page.wait_for_selector(f"body[data-view={name}]")

    def ids(self) -> list[int]:
        cells = self.page.locator("#runs tbody tr[data-id]")
        return [int(x) for x in cells.evaluate_all("rs => rs.map(r => r.dataset.id)")]

    def header(self) -> list[str]:
        return self.page.locator("#runs thead th[data-column]").evaluate_all(
            "hs => hs.map(h => h.dataset.column)"
        )

    def count(self) -> str:
        return self.page.inner_text("#count")

    def shot(self, name: str, folder: Path) -> None:
        if os.environ.get("EXMAN_DOCS_SCREENSHOTS") == "1":
            folder = DOCS_STATIC
        folder.mkdir(parents=True, exist_ok=True)
        # the pictures show where a user's root would be, not the test's
        self.page.evaluate(
            "document.getElementById('root-name').textContent = '~/project/exman'"
        )
        self.page.wait_for_timeout(300)  # plotly's transitions
        self.page.screenshot(path=str(folder / f"views-{name}.png"))

    def close(self) -> None:
        self.page.close()


def wait_count(page: Any, n: int) -> None:
    """Until the page says it shows ``n`` runs."""
    page.wait_for_function(
        f"document.getElementById('count').textContent.startsWith('{n} ')"
    )


@pytest.fixture
def report(root: Path, tmp_path: Path) -> Path:
    from exman.views.report import report

    make_root(root, n=12)
    return report(root, tmp_path / "report.html")


@pytest.fixture
def tab(browser: Any) -> Iterator[Tab]:
    t = Tab(browser, offline=True)
    yield t
    assert t.errors == []
    assert t.dialogs == []
    t.close()


def test_the_report_opens_offline_and_sorts_and_filters(
    tab: Tab, report: Path, tmp_path: Path
) -> None:
    page = tab.open(report.as_uri())
    assert tab.refused == []
    assert tab.count() == "12 of 12 runs"
    assert tab.ids() == list(range(1, 13))
    # the columns that differ; exman's own that do not are hidden
    header = tab.header()
    assert {"id", "lr", "model", "seed", "note", "acc", "loss", "status"} <= set(header)
    assert "host" not in header and "path" not in header
    tab.shot("table", tmp_path)
    page.click("#runs th[data-column=acc]")
    ids = tab.ids()
    accs = [0.5 + [0.001, 0.01, 0.1][(i - 1) % 3] + ((i - 1) // 6) * 0.01 for i in ids]
    assert accs == sorted(accs)
    page.click("#runs th[data-column=acc]")
    assert tab.ids()[0] in (6, 9, 12)  # the best accuracy first
    page.fill("#query", "lr > 0.005 and model == 'b'")
    page.press("#query", "Enter")
    wait_count(page, 4)
    assert sorted(tab.ids()) == [5, 6, 11, 12]
    assert "model" not in tab.header()  # constant among the runs shown
    page.click("#columns-menu summary")
    page.check("#column-list input[data-column=model]")
    assert "model" in tab.header()
    page.fill("#query", "nosuch > 1")
    page.press("#query", "Enter")
    assert "no column 'nosuch'" in page.inner_text("#query-error")
    page.fill("#query", "")
    page.press("#query", "Enter")
    page.fill("#search", "quoted")
    wait_count(page, 1)
    assert tab.ids() == [2]


def test_the_table_draws_only_the_visible_rows(
    browser: Any, root: Path, tmp_path: Path
) -> None:
    from exman.views.data import payload
    from exman.views.page import render

    make_root(root, n=2, steps=2)
    import exman

    data = payload(exman.Index(root))
    data["rows"] = [[i, *data["rows"][0][1:]] for i in range(1, 10001)]
    out = tmp_path / "big.html"
    out.write_text(render(data), encoding="utf-8")
    tab = Tab(browser, offline=True)
    try:
        tab.open(out.as_uri())
        assert tab.count() == "10000 of 10000 runs"
        assert len(tab.ids()) < 80
        tab.page.evaluate("document.getElementById('table-scroll').scrollTop = 125000")
        tab.page.wait_for_function(
            "document.querySelector('#runs tbody tr[data-id=\"5001\"]') !== null"
        )
        assert 5001 in tab.ids() and len(tab.ids()) < 80
    finally:
        tab.close()


def test_brushing_an_axis_filters_the_table(
    tab: Tab, report: Path, tmp_path: Path
) -> None:
    page = tab.open(report.as_uri())
    tab.view("parcoords")
    labels = page.locator("#pc-plot text.axis-title").evaluate_all(
        "ts => ts.map(t => t.textContent)"
    )
    assert labels == ["lr", "model", "note", "seed", "loss"]
    brush = page.locator("#pc-plot .axis-brush rect.background").first.bounding_box()
    assert brush is not None
    x = brush["x"] + brush["width"] / 2
    # lr runs from 0.001 at the bottom to 0.1 at the top: drag from a fifth
    # down to past the top
    page.mouse.move(x, brush["y"] + brush["height"] * 0.2)
    page.mouse.down()
    page.mouse.move(x, brush["y"] + brush["height"] * 0.1, steps=4)
    page.mouse.move(x, brush["y"] - 10, steps=4)
    page.mouse.up()
    wait_count(page, 4)
    tab.shot("parcoords", tmp_path)
    tab.view("table")
    assert sorted(tab.ids()) == [3, 6, 9, 12]
    page.click("#clear-brush")
    assert tab.count() == "12 of 12 runs"


def test_two_runs_side_by_side(tab: Tab, report: Path, tmp_path: Path) -> None:
    page = tab.open(report.as_uri())
    page.check("#runs tr[data-id='3'] input[type=checkbox]")
    page.check("#runs tr[data-id='6'] input[type=checkbox]")
    assert page.inner_text("#selection") == "2 selected: 3, 6"
    tab.view("compare")
    rows = page.locator("#cmp-params tr").evaluate_all(
        "rs => rs.map(r => Array.from(r.cells).map(c => c.textContent))"
    )
    assert rows == [["parameter", "run 3", "run 6"], ["model", "a", "b"]]
    results = page.locator("#cmp-results tr").evaluate_all(
        "rs => rs.map(r => Array.from(r.cells).map(c => c.textContent))"
    )
    acc = next(r for r in results if r[0] == "acc")
    assert acc == ["acc", "0.6", "0.6", "+0 (+0%)"]
    loss = next(r for r in results if r[0] == "loss")
    assert float(loss[3].split()[0]) == pytest.approx(0.003, abs=1e-6)
    # the curves of both, overlaid
    assert page.evaluate("document.getElementById('cmp-plot').data.length") == 2
    assert page.locator("#cmp-plot .scatterlayer .trace").count() == 2
    tab.shot("compare", tmp_path)


def test_drawn_curves_and_points_match_the_runs(
    tab: Tab, report: Path, tmp_path: Path
) -> None:
    page = tab.open(report.as_uri())
    tab.view("curves")
    page.wait_for_selector("#cu-plot .scatterlayer .trace")
    assert page.locator("#cu-plot .scatterlayer .trace").count() == 12
    points = page.evaluate(
        "document.getElementById('cu-plot').data.map(t => t.x.length)"
    )
    assert points == [10] * 12
    assert "12 curves" in page.inner_text("#cu-note")
    tab.shot("curves", tmp_path)
    # mean over seed: one curve per (lr, model), its band around it; runs 1
    # and 2 have a note of their own, so the query leaves them out
    page.fill("#query", "note == 'plain'")
    page.press("#query", "Enter")
    page.select_option("#cu-mode", "aggregate")
    names = page.evaluate(
        "document.getElementById('cu-plot').data.filter(t => t.name).map(t => t.name)"
    )
    assert len(names) == 6
    counts = sorted(int(n.rsplit("(n=", 1)[1].rstrip(")")) for n in names)
    assert counts == [1, 1, 2, 2, 2, 2]
    assert page.locator("#cu-plot .scatterlayer .trace").count() == 18
    page.check("#cu-log")
    yaxis = page.evaluate("document.getElementById('cu-plot').layout.yaxis.type")
    assert yaxis == "log"
    # a query draws fewer
    page.fill("#query", "model == 'a'")
    page.press("#query", "Enter")
    page.select_option("#cu-mode", "overlay")
    assert page.locator("#cu-plot .scatterlayer .trace").count() == 6
    # interest ~ parameter: one point per lr, the mean of its runs, n shown
    page.fill("#query", "")
    page.press("#query", "Enter")
    tab.view("interest")
    page.select_option("#in-y", "acc")
    page.select_option("#in-x", "lr")
    assert page.locator("#in-plot .scatterlayer .point").count() == 3
    texts = page.locator("#in-plot .scatterlayer .textpoint").evaluate_all(
        "ts => ts.map(t => t.textContent)"
    )
    assert sorted(texts) == ["n=4", "n=4", "n=4"]
    page.select_option("#in-by", "model")
    assert page.locator("#in-plot .scatterlayer .point").count() == 6
    assert "6 points from 12 runs" in page.inner_text("#in-note")
    tab.shot("interest", tmp_path)


def test_hostile_values_stay_text(tab: Tab, report: Path, tmp_path: Path) -> None:
    page = tab.open(report.as_uri())
    scripts = page.evaluate("document.scripts.length")
    cell = page.locator("#runs tr[data-id='1'] td").evaluate_all(
        "ts => ts.map(t => t.textContent)"
    )
    assert HOSTILE in cell
    assert QUOTED in page.locator("#runs tr[data-id='2']").inner_text()
    for view in VIEWS:
        tab.view(view)
    tab.view("run")
    for run, text in (("1", HOSTILE), ("2", "q\"u'ote")):
        page.fill("#run-id", run)
        page.press("#run-id", "Enter")
        page.wait_for_selector(f"#run-body h2:has-text('run {run}')")
        assert text in page.inner_text("#run-body")
    tab.shot("run", tmp_path)
    page.wait_for_timeout(300)
    assert page.evaluate("document.scripts.length") == scripts
    assert tab.dialogs == []


def test_the_live_page_shows_new_runs_and_follows_a_log(
    browser: Any, root: Path
) -> None:
    pytest.importorskip("uvicorn")
    make_root(root, n=3)
    gen = start_ui(root, "--poll", "300")
    server = next(gen)
    tab = Tab(browser)
    try:
        page = tab.open(f"http://127.0.0.1:{server.port}/")
        assert tab.count() == "3 of 3 runs"
        folder = make_run(root, {"lr": 0.5, "model": "c", "seed": 9}, status="running")
        page.wait_for_function(
            "document.getElementById('count').textContent === '4 of 4 runs'",
            timeout=15000,
        )
        row = page.locator("#runs tr[data-id='4']")
        assert "running" in row.inner_text()
        row.locator("button.open").click()
        page.wait_for_selector("#run-log")
        with open(folder / "log.txt", "a") as f:
            f.write("epoch 1 done\n")
        page.wait_for_function(
            "document.getElementById('run-log').textContent.includes('epoch 1 done')",
            timeout=15000,
        )
        # its files are served from the root
        href = page.locator("#run-body a", has_text="params.yaml").get_attribute("href")
        assert href is not None and href.startswith("files/runs/")
        from exman.record.run import Run

        Run(folder).finish("completed", exit_code=0)
        tab.view("table")
        page.wait_for_function(
            "document.querySelector(\"#runs tr[data-id='4'] .status\")"
            ".textContent === 'completed'",
            timeout=15000,
        )
        assert tab.errors == [] and tab.dialogs == []
    finally:
        tab.close()
        gen.close()


def test_screenshot_names_are_the_views() -> None:
    # the docs page shows one picture per view, under these names
    text = (DOCS_STATIC.parent / "views.rst").read_text()
    for view in VIEWS:
        assert f"_static/views-{view}.png" in text
