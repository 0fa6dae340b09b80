"""Following a search's running trials: their curves in, the pruner's word out.

A thread of the launcher looks at each running trial every
:data:`INTERVAL` seconds. The trial's intermediate values are the
``exman.log(step, <objective>=...)`` records of its run (the lines that
``metrics.jsonl`` gained since the last look); each new step is reported
to the study, and the pruner is asked about the trial. When it says prune:

1. the trial's stop file is created (``EXMAN_STOP_FILE``): a script that
   calls ``exman.should_stop()`` sees it and ends by itself;
2. the launcher that runs the trial watches the same file
   (:attr:`~.launchers.base.LaunchTask.stop_file`): after the search's
   ``grace`` seconds, a trial still running gets SIGTERM, its whole process
   group with it, and SIGKILL after as long again, so a script that never
   asks is stopped all the same, wherever it runs.

Either way its run is recorded as ``pruned`` (:mod:`exman.record.stop`,
:func:`exman.sweep.outcome.settle`).
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..record.files import make_dir
from ..record.metrics import METRICS_FILE
from ..record.store import Root, atomic_write, run_id
from .runs import read_run

__all__ = ["INTERVAL", "Pruning"]

#: seconds between two looks at the running trials
INTERVAL = 0.1
#: bytes of a metrics file read at one look, at most
CHUNK = 1 << 20
#: seconds between two scans of ``runs/`` for the runs of new trials (one
#: scan serves every trial whose run is not found yet: a root of many runs
#: costs one listing per new run or so, as finding a task's run does)
SCAN_INTERVAL = 0.3


@dataclass
class _Followed:
    number: int
    key: str
    trial: Any
    stop_file: str
    folder: str | None = None
    offset: int = 0
    last_step: int | None = None
    pruned: bool = False


class Pruning:
    """The thread that follows the running trials of one search.

    :param root: the sweep's root (its new runs are where trials write).
    :param objective: the metric whose records are the intermediate values.
    :param lock: held around every call to the study, shared with the
        thread that asks and tells (a trial is never reported after it was
        told).
    :param after: the largest run id before the search started.
    :param note: receives messages for the user.
    """

    def __init__(
        self,
        root: Root,
        objective: str,
        lock: threading.Lock,
        *,
        after: int,
        note: Callable[[str], None],
    ) -> None:
        self.root = root
        self.objective = objective
        self.lock = lock
        self.after = after
        self.note = note
        self.followed: dict[str, _Followed] = {}
        #: run folder -> its task key (None: not a sweep run), each read once
        self.known: dict[str, str | None] = {}
        self.stopped: set[str] = set()
        self._scanned = 0.0
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- from the sweep's thread -----------------------------------------------
    def follow(
        self,
        number: int,
        key: str,
        trial: Any,
        stop_file: str,
        reported: int | None = None,
    ) -> None:
        """Follow trial ``number`` (task ``key``).

        :param reported: the last step the study holds of it already.
        """
        item = _Followed(number, key, trial, stop_file, last_step=reported)
        with self.lock:
            self.followed[key] = item
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name="exman-pruning", daemon=True
            )
            self._thread.start()

    def forget(self, key: str) -> None:
        """The trial ended: follow it no more (call with :attr:`lock` held)."""
        self.followed.pop(key, None)

    def close(self) -> None:
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    # -- the thread ------------------------------------------------------------
    def _loop(self) -> None:
        while not self._wake.wait(INTERVAL):
            try:
                self.look()
            except Exception as e:  # the sweep goes on; pruning stops
                self.note(f"search: pruning stopped: {type(e).__name__}: {e}")
                return

    def look(self) -> None:
        """One look at every followed trial."""
        with self.lock:
            trials = list(self.followed.values())
        missing = {item.key for item in trials if item.folder is None}
        now = time.monotonic()
        if missing and now - self._scanned >= SCAN_INTERVAL:
            self._scanned = now
            found = self._find(missing)
            for item in trials:
                item.folder = item.folder or found.get(item.key)
        for item in trials:
            if item.pruned:
                continue  # the launcher stops it
            values = self._new_values(item)
            if not values:
                continue
            with self.lock:
                if item.key not in self.followed:
                    continue  # told meanwhile
                try:
                    for step, value in values:
                        item.trial.report(value, step)
                    prune = item.trial.should_prune()
                except Exception as e:  # (told by another launcher): let it run
                    self.followed.pop(item.key, None)
                    self.note(
                        f"search: trial {item.number} is not pruned any more: "
                        f"{type(e).__name__}: {e}"
                    )
                    continue
            if prune:
                self._prune(item, values[-1][0])

    def _prune(self, item: _Followed, step: int) -> None:
        make_dir(os.path.dirname(item.stop_file), exist_ok=True)
        atomic_write(item.stop_file, f"pruned at step {step}\n")
        item.pruned = True
        self.stopped.add(item.key)

    # -- the curve -------------------------------------------------------------
    def _new_values(self, item: _Followed) -> list[tuple[int, float]]:
        """The objective's records the trial's run wrote since the last look."""
        if item.folder is None:
            return []
        try:
            with open(os.path.join(item.folder, METRICS_FILE), "rb") as f:
                f.seek(item.offset)
                data = f.read(CHUNK)
        except OSError:
            return []
        end = data.rfind(b"\n") + 1  # a line being written waits for the next look
        item.offset += end
        out: list[tuple[int, float]] = []
        for line in data[:end].splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            step, value = record.get("step"), record.get(self.objective)
            if isinstance(step, bool) or not isinstance(step, int):
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if not math.isfinite(value):
                continue
            if item.last_step is not None and step <= item.last_step:
                continue  # a step reported already
            item.last_step = step
            out.append((step, float(value)))
        return out

    def _find(self, keys: set[str]) -> dict[str, str]:
        """The run folders of tasks ``keys``, among the runs made since the start."""
        try:
            entries = os.scandir(self.root.runs)
        except FileNotFoundError:
            return {}
        found: dict[str, str] = {}
        with entries:
            for entry in entries:
                num = run_id(entry.name)
                if num is None or num <= self.after:
                    continue
                if entry.path not in self.known:
                    info = read_run(pathlib.Path(entry.path))
                    if info is None:
                        if os.path.exists(os.path.join(entry.path, "run.json")):
                            self.known[entry.path] = None
                        continue
                    self.known[entry.path] = info.key
                key = self.known[entry.path]
                if key is not None and key in keys:
                    found[key] = entry.path
        return found
