"""Notifications: shell hooks after each task and at the end, and a webhook.

``on_task_end`` runs after every task, in the background (a slow hook never
holds the pool up; hooks run one at a time, in order); ``on_sweep_end`` and
the ``webhook`` run once at the end. Every hook has a time limit, and a hook
that fails is reported, never fatal: notifications must not stop a sweep.

The details reach a shell hook in environment variables (see
:meth:`exman.sweep.summary.TaskResult.hook_env` and
:meth:`exman.sweep.summary.SweepSummary.hook_env`). They deliberately avoid
the names that make an ExParser script record a sweep task
(``EXMAN_SWEEP_KEY``…), so a hook may start an exman script of its own.
"""

from __future__ import annotations

import json
import os
import pathlib
import queue
import signal
import subprocess
import threading
from collections.abc import Mapping
from typing import Any

from ..record.config import SWEEP_PARAMS_ENV
from ..record.run import SWEEP_ENV

__all__ = ["HOOK_TIMEOUT", "WEBHOOK_TIMEOUT", "Hooks", "post_json", "run_hook"]

#: seconds a shell hook may take
HOOK_TIMEOUT = 60.0
#: seconds the webhook server may take to answer
WEBHOOK_TIMEOUT = 10.0
#: variables a hook must not inherit: they would make it a sweep task
_TASK_VARS = (*SWEEP_ENV.values(), SWEEP_PARAMS_ENV)


def run_hook(
    command: str,
    env: Mapping[str, str],
    *,
    cwd: str | os.PathLike[str],
    timeout: float = HOOK_TIMEOUT,
    what: str = "hook",
) -> str | None:
    """Run ``command`` with ``sh -c`` and ``env`` added to the environment.

    :returns: None when it succeeded, else a message that says what went
        wrong (exit code and the last line of its output, or the timeout).
    """
    full = {k: v for k, v in os.environ.items() if k not in _TASK_VARS}
    full.update(env)
    try:
        proc = subprocess.Popen(
            command,
            shell=True,
            cwd=cwd,
            env=full,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as e:
        return f"{what} {command!r} could not start: {e.strerror or e}"
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.communicate()
        return f"{what} {command!r} took more than {timeout:g} s and was killed"
    if proc.returncode != 0:
        lines = out.decode("utf-8", "replace").strip().splitlines()
        tail = f": {lines[-1].strip()}" if lines else ""
        return f"{what} {command!r} exited with code {proc.returncode}{tail}"
    return None


def post_json(
    url: str, payload: Any, *, timeout: float = WEBHOOK_TIMEOUT
) -> str | None:
    """POST ``payload`` as JSON to ``url``.

    :returns: None when the server answered 2xx, else what went wrong.
    """
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url,
        data=json.dumps(payload, default=str).encode("utf-8"),
        headers={"Content-Type": "application/json", "User-Agent": "exman-sweep"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as e:
        return f"webhook {url} answered {e.code} {e.reason}"
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        return f"webhook {url} failed: {reason}"
    return None


class Hooks:
    """The notifications of one sweep.

    :param on_task_end: shell command run after each task (or None).
    :param on_sweep_end: shell command run at the end (or None).
    :param webhook: URL that gets a JSON summary at the end (or None).
    :param cwd: where the shell hooks run (the spec's folder).
    """

    def __init__(
        self,
        *,
        on_task_end: str | None,
        on_sweep_end: str | None,
        webhook: str | None,
        cwd: pathlib.Path,
        timeout: float = HOOK_TIMEOUT,
    ) -> None:
        self.on_task_end = on_task_end
        self.on_sweep_end = on_sweep_end
        self.webhook = webhook
        self.cwd = cwd
        self.timeout = timeout
        #: every failure so far, in order
        self.errors: list[str] = []
        self._reported = 0
        self._lock = threading.Lock()
        self._queue: queue.Queue[dict[str, str] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def task_end(self, env: Mapping[str, str]) -> None:
        """Queue ``on_task_end`` with ``env``; it runs in the background."""
        if self.on_task_end is None:
            return
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._work, name="exman-sweep-hooks", daemon=True
            )
            self._thread.start()
        self._queue.put(dict(env))

    def _work(self) -> None:
        assert self.on_task_end is not None  # the thread starts only then
        while True:
            env = self._queue.get()
            if env is None:
                return
            error = run_hook(
                self.on_task_end,
                env,
                cwd=self.cwd,
                timeout=self.timeout,
                what="on_task_end",
            )
            if error is not None:
                self._error(error)

    def _error(self, message: str) -> None:
        with self._lock:
            self.errors.append(message)

    def new_errors(self) -> list[str]:
        """The failures not returned by an earlier call."""
        with self._lock:
            fresh = self.errors[self._reported :]
            self._reported = len(self.errors)
        return fresh

    def wait(self) -> None:
        """Let the queued ``on_task_end`` hooks finish."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def sweep_end(self, env: Mapping[str, str], payload: Mapping[str, Any]) -> None:
        """Run ``on_sweep_end`` and post the webhook (after :meth:`wait`)."""
        self.wait()
        if self.on_sweep_end is not None:
            error = run_hook(
                self.on_sweep_end,
                env,
                cwd=self.cwd,
                timeout=self.timeout,
                what="on_sweep_end",
            )
            if error is not None:
                self._error(error)
        if self.webhook is not None:
            error = post_json(self.webhook, payload)
            if error is not None:
                self._error(error)
