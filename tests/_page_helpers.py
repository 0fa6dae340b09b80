"""Roots, reports and a live ``exman ui`` for the tests of the views."""

from __future__ import annotations

import html.parser
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _index_runs import make_run

from exman.record.metrics import recorder_for
from exman.record.run import Run

HOSTILE = "</script><script>alert(1)</script>"
QUOTED = 'it\'s "quoted" & <b>bold</b>'


def make_root(root: Path, n: int = 12, steps: int = 10) -> list[Path]:
    """Runs over lr x model x seed with a loss curve and an accuracy result;
    the last one failed, the first two carry hostile values."""
    folders = []
    for i in range(n):
        params = {
            "lr": [0.001, 0.01, 0.1][i % 3],
            "model": ["a", "b"][(i // 3) % 2],
            "seed": i // 6,
            "note": HOSTILE if i == 0 else QUOTED if i == 1 else "plain",
        }
        status = "failed" if i == n - 1 else "completed"
        name = "q\"u'ote" if i == 1 else None
        folder = make_run(root, params, status=status, name=name)
        run = Run(folder)
        for step in range(steps):
            run.log(step=step, loss=1.0 / (1 + step * params["lr"] * 10) + i * 1e-3)
        run.result(acc=0.5 + params["lr"] + params["seed"] * 0.01)
        recorder_for(folder).flush()
        folders.append(folder)
    return folders


class Page(html.parser.HTMLParser):
    """The elements of a page that matter here: scripts, links, styles."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.links: list[dict[str, str | None]] = []
        self._in: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self._in, self._text = dict(attrs), []
        elif tag in ("link", "img", "iframe"):
            self.links.append(dict(attrs))

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._in is not None:
            self.scripts.append((self._in, "".join(self._text)))
            self._in = None


def read_page(path: Path) -> tuple[Page, dict[str, Any]]:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    data = [t for a, t in page.scripts if a.get("id") == "exman-data"]
    assert len(data) == 1
    return page, json.loads(data[0])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, proc: subprocess.Popen[str], host: str, port: int) -> None:
        self.proc, self.host, self.port = proc, host, port
        self.token: str | None = None

    def get(
        self, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """GET ``path`` as it is written: http.client normalises nothing."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()


def start_ui(root: Path, *args: str) -> Iterator[Server]:
    port = free_port()
    env = dict(os.environ)
    env.pop("EXMAN_ROOT", None)
    cmd = [
        sys.executable,
        "-m",
        "exman",
        "--root",
        str(root),
        "ui",
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(
        [*cmd, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    server = Server(proc, "127.0.0.1", port)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    _, err = proc.communicate()
                    pytest.fail(f"exman ui did not start: {err}")
                time.sleep(0.1)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
