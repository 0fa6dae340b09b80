"""The views' data, the report file and the live server, without a browser.

The report is read back with an HTML parser: its scripts are inline, its
data is JSON that no value can break out of. The server runs as ``exman
ui`` in a real process and is asked over real HTTP, paths that try to leave
the root included.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _page_helpers import HOSTILE, QUOTED, Server, make_root, read_page, start_ui
from _run_helpers import exman_command

pytest.importorskip("plotly")


def test_payload_has_the_runs_curves_and_details(root: Path) -> None:
    import exman
    from exman.views.data import payload

    make_root(root)
    data = payload(exman.Index(root))
    names = [c["name"] for c in data["columns"]]
    kinds = {c["name"]: c["kind"] for c in data["columns"]}
    assert names[0] == "id"
    assert kinds["lr"] == kinds["model"] == kinds["seed"] == "param"
    assert kinds["acc"] == kinds["loss"] == "result"
    assert kinds["status"] == kinds["marks"] == kinds["time"] == "run"
    assert len(data["rows"]) == 12
    row = dict(zip(names, data["rows"][-1]))
    assert row["status"] == "failed" and row["path"].startswith("fails/")
    assert row["error"] == "ValueError: asked to fail"
    assert data["over"] == "seed"
    assert data["metrics"] == ["loss"]
    curves = data["curves"]["loss"]
    assert sorted(curves, key=int) == [str(i) for i in range(1, 13)]
    assert curves["3"][0] == list(range(10))
    details = data["details"]["12"]
    assert details["place"] == "fails" and "ValueError" in details["traceback"]
    size = (root / "fails" / details["name"] / "params.yaml").stat().st_size
    assert ["params.yaml", size] in details["files"]
    assert details["rerun"] == "exman rerun 12"
    json.dumps(data, allow_nan=False)  # plain JSON: no NaN anywhere


def test_payload_query_and_marks(root: Path) -> None:
    import exman
    from exman.record.store import ExmanError
    from exman.views.data import payload

    folders = make_root(root, n=4)
    exman_command("mark", "best", "2", cwd=root)
    index = exman.Index(root)
    data = payload(index, query="lr > 0.005", curves=False, details=False)
    ids = [r[0] for r in data["rows"]]
    assert ids == [2, 3]
    marks = [c["name"] for c in data["columns"]].index("marks")
    assert data["rows"][0][marks] == ["best"]
    assert data["curves"] == {} and data["details"] == {}
    assert [r[0] for r in payload(index, source="best")["rows"]] == [2]
    with pytest.raises(ExmanError, match="nosuch"):
        payload(index, query="nosuch > 1")
    assert folders


def test_the_report_is_one_file_with_everything_inside(
    root: Path, tmp_path: Path
) -> None:
    make_root(root)
    out = tmp_path / "out" / "r.html"
    out.parent.mkdir()
    done = exman_command("--root", str(root), "report", "-o", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert str(out) in done.stdout
    page, data = read_page(out)
    # nothing loaded from elsewhere: every script inline, no links
    assert all("src" not in attrs for attrs, _ in page.scripts)
    assert page.links == []
    code = [t for a, t in page.scripts if "type" not in a]
    assert any("Plotly" in t for t in code) and len(code) == 2
    assert len(data["rows"]) == 12


def test_report_options_select_the_runs(root: Path, tmp_path: Path) -> None:
    make_root(root, n=6)
    exman_command("--root", str(root), "mark", "best", "1", "4", cwd=tmp_path)
    out = tmp_path / "r.html"
    args = ("--root", str(root), "report", "-o", str(out))
    done = exman_command(*args, "--query", "model == 'b'", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [r[0] for r in read_page(out)[1]["rows"]] == [4, 5, 6]
    done = exman_command(*args, "--marked", "best", cwd=tmp_path)
    assert [r[0] for r in read_page(out)[1]["rows"]] == [1, 4]
    done = exman_command(*args, "--query", "nosuch == 1", cwd=tmp_path)
    assert done.returncode == 2
    assert "--query 'nosuch == 1'" in done.stderr and "the columns are" in done.stderr


def test_hostile_values_stay_data(root: Path, tmp_path: Path) -> None:
    from exman.views.report import report

    make_root(root, n=3)
    out = report(root, tmp_path / "r.html")
    text = out.read_text(encoding="utf-8")
    page, data = read_page(out)
    # the value closes no script element: the page has exactly its own
    assert len(page.scripts) == 6
    assert text.count("<script") == 6
    assert "alert(1)" not in text.replace(
        "\\u003c/script\\u003e\\u003cscript\\u003ealert(1)", ""
    )
    notes = [
        r[[c["name"] for c in data["columns"]].index("note")] for r in data["rows"]
    ]
    assert notes[:2] == [HOSTILE, QUOTED]
    assert any("q\"u'ote" in r[-1] for r in data["rows"])


# -- the live server ------------------------------------------------------------
@pytest.fixture
def served(root: Path, tmp_path: Path) -> Iterator[Server]:
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    make_root(root, n=4)
    yield from start_ui(root)


def test_the_server_serves_the_page_and_its_data(served: Server, root: Path) -> None:
    status, headers, body = served.get("/")
    assert status == 200 and b'src="static/plotly.min.js"' in body
    for name in ("page.js", "page.css", "plotly.min.js"):
        assert served.get(f"/static/{name}")[0] == 200
    assert served.get("/static/..%2fdata.py")[0] == 404
    status, headers, body = served.get("/api/payload")
    assert status == 200
    data = json.loads(body)
    assert [r[0] for r in data["rows"]] == [1, 2, 3, 4]
    assert served.get("/api/payload", {"If-None-Match": headers["etag"]})[0] == 304
    status, _, body = served.get("/api/run/4")
    details = json.loads(body)
    assert (
        status == 200 and details["status"] == "failed" and details["place"] == "fails"
    )
    assert served.get("/api/run/99")[0] == 404
    name = details["name"]
    status, headers, body = served.get(f"/files/fails/{name}/params.yaml")
    assert status == 200 and b"lr:" in body
    assert headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "path",
    [
        "/files/../lock",
        "/files/runs/../lock",
        "/files/runs/%2e%2e/lock",
        "/files/%2e%2e/%2e%2e/etc/passwd",
        "/files/runs%2f..%2f..%2fetc%2fpasswd",
        "/files//etc/passwd",
        "/files/index/x.yaml",
        "/files/.exman/counter",
        "/files/runs/%00",
        "/files/runs/LINK/out.txt",
        "/files/runs/LINK-FILE",
    ],
)
def test_the_server_refuses_paths_out_of_the_run_folders(
    served: Server, root: Path, tmp_path: Path, path: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "out.txt").write_text("secret")
    first = sorted((root / "runs").iterdir())[0]
    link = first / "LINK"
    if not link.exists():
        link.symlink_to(outside)
        (first / "LINK-FILE").symlink_to(outside / "out.txt")
    path = path.replace("LINK", f"{first.name}/LINK")
    status, _, body = served.get(path)
    assert status in (403, 404), (path, status, body)
    assert b"secret" not in body and b"root:" not in body


def test_a_link_inside_the_root_is_served(served: Server, root: Path) -> None:
    first, second = sorted((root / "runs").iterdir())[:2]
    (first / "other").symlink_to(second / "params.yaml")
    status, _, body = served.get(f"/files/runs/{first.name}/other")
    assert status == 200 and b"lr:" in body


def test_another_address_needs_the_token(root: Path) -> None:
    pytest.importorskip("uvicorn")
    make_root(root, n=2)
    gen = start_ui(root, "--host", "0.0.0.0")
    server = next(gen)
    try:
        line = ""
        deadline = time.monotonic() + 10
        assert server.proc.stderr is not None
        text = ""
        while "token=" not in text and time.monotonic() < deadline:
            line = server.proc.stderr.readline()
            text += line
        assert "warning: listening on 0.0.0.0" in text
        token = re.search(r"token=([\w-]+)", text)
        assert token
        assert server.get("/")[0] == 403
        assert server.get("/api/payload")[0] == 403
        assert server.get("/api/payload?token=wrong")[0] == 403
        status, headers, _ = server.get(f"/?token={token.group(1)}")
        assert status == 200 and "exman_token=" in headers["set-cookie"]
        cookie = headers["set-cookie"].split(";")[0]
        assert server.get("/api/payload", {"Cookie": cookie})[0] == 200
        bearer = {"Authorization": f"Bearer {token.group(1)}"}
        assert server.get("/files/runs/x", bearer)[0] == 404
    finally:
        gen.close()


def test_import_exman_stays_light() -> None:
    code = (
        "import sys, exman, exman.cli\n"
        "heavy = [m for m in ('plotly', 'starlette', 'uvicorn', 'exman.views') "
        "if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
