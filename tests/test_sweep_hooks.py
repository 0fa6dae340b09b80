"""Sweep notifications: shell hooks and a webhook to a real server on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import os
import shlex
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from exman.sweep import sweep
from exman.sweep.hooks import post_json, run_hook

PYTHON = shlex.quote(sys.executable)


class Server:
    """An HTTP server in a thread that keeps what is POSTed to it."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                outer.bodies.append(json.loads(self.rfile.read(length)))
                outer.headers.append(dict(self.headers))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.close()


@pytest.fixture
def script(make_script: Callable[..., Path]) -> Path:
    return make_script()


def write_spec(folder: Path, **data: Any) -> Path:
    data.setdefault("command", f"{PYTHON} main.py")
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


# a hook that writes the variables it got, one JSON line per call
DUMP = (
    f'{PYTHON} -c "import json, os, sys; '
    "open(sys.argv[1], 'a').write(json.dumps(dict(os.environ)) + chr(10))\""
)


def lines(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_hooks_get_the_details_and_the_webhook_a_summary(
    script: Path, root: Path, server: Server
) -> None:
    spec = write_spec(
        script.parent,
        grid={"fail": ["", "raise"]},
        on_task_end=f"{DUMP} tasks.jsonl",
        on_sweep_end=f"{DUMP} end.jsonl",
        webhook=server.url,
    )
    summary = sweep(spec, jobs=2)
    assert summary.exit_code == 1 and summary.hook_errors == []

    tasks = sorted(lines(script.parent / "tasks.jsonl"), key=lambda e: e["EXMAN_TASK"])
    assert [t["EXMAN_TASK_STATUS"] for t in tasks] == ["completed", "failed"]
    ok, bad = tasks
    assert json.loads(ok["EXMAN_TASK_PARAMS"]) == {"fail": ""}
    assert ok["EXMAN_TASK_EXIT_CODE"] == "0"
    assert bad["EXMAN_TASK_REASON"] == "ValueError: asked to fail"
    assert Path(bad["EXMAN_TASK_RUN_PATH"]).parent == root / "fails"
    assert bad["EXMAN_TASK_RUN"] == str(int(Path(bad["EXMAN_TASK_RUN_PATH"]).name[:6]))
    assert "asked to fail" in Path(bad["EXMAN_TASK_LOG"]).read_text()
    for env in tasks:
        assert env["EXMAN_SWEEP_NAME"] == "sweep"
        assert env["EXMAN_SWEEP_ROOT"] == str(root)
        # a hook may start an exman script: it must not record itself as the task
        assert "EXMAN_SWEEP_KEY" not in env and "EXMAN_SWEEP_PARAMS" not in env

    (end,) = lines(script.parent / "end.jsonl")
    assert end["EXMAN_SWEEP_STATUS"] == "failed"
    assert end["EXMAN_SWEEP_COMPLETED"] == "1" and end["EXMAN_SWEEP_FAILED"] == "1"
    assert json.loads(end["EXMAN_SWEEP_SUMMARY"])["counts"]["failed"] == 1

    (body,) = server.bodies
    assert body["sweep"] == "sweep" and body["status"] == "failed"
    assert "1 completed" in body["text"] and "1 failed" in body["text"]
    assert body["failures"][0]["reason"] == "ValueError: asked to fail"
    assert server.headers[0]["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    "hooks",
    [
        {"on_task_end": "exit 3"},
        {"on_sweep_end": "echo broken >&2; exit 4"},
        {"on_task_end": "/no/such/program"},
        {"webhook": "http://127.0.0.1:9/closed"},
    ],
)
def test_a_failing_hook_is_reported_and_never_stops_the_sweep(
    script: Path, root: Path, hooks: dict[str, str]
) -> None:
    spec = write_spec(script.parent, grid={"lr": [0.1, 0.2]}, **hooks)
    summary = sweep(spec, jobs=2)
    assert summary.result_counts()["completed"] == 2
    assert summary.exit_code == 0
    assert summary.hook_errors
    assert "hook failed" in summary.text()
    if "on_sweep_end" in hooks:
        assert summary.hook_errors == [
            f"on_sweep_end {hooks['on_sweep_end']!r} exited with code 4: broken"
        ]


def test_a_webhook_that_answers_an_error_is_reported() -> None:
    srv = Server(status=500)
    try:
        error = post_json(srv.url, {"text": "x"})
    finally:
        srv.close()
    assert error is not None and "500" in error


def test_a_hook_that_hangs_is_killed_with_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    start = time.monotonic()
    error = run_hook(
        f"sleep 60 & echo $! > {shlex.quote(str(pid_file))}; wait",
        {},
        cwd=tmp_path,
        timeout=0.5,
    )
    assert time.monotonic() - start < 20
    assert error is not None and "took more than 0.5 s" in error
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            stat = Path(f"/proc/{pid}/stat").read_text()
            if stat[stat.rfind(")") + 2] == "Z":
                break
        except (ProcessLookupError, FileNotFoundError):
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the hook's child outlived it")


def test_every_task_hook_has_run_when_the_sweep_returns(
    script: Path, root: Path
) -> None:
    spec = write_spec(
        script.parent,
        grid={"lr": [0.1, 0.2, 0.3, 0.4]},
        on_task_end=f"sleep 0.3; {DUMP} tasks.jsonl",
    )
    summary = sweep(spec, jobs=2)
    assert summary.exit_code == 0
    # every hook ran before sweep() returned
    assert len(lines(script.parent / "tasks.jsonl")) == 4
