"""Launchers: where the tasks of a sweep run (see :mod:`.base`)."""

from __future__ import annotations

from .base import (
    LAUNCHERS,
    Finished,
    JobState,
    Launcher,
    LaunchEvent,
    LaunchTask,
    Queued,
    Started,
    get_launcher,
)

__all__ = [
    "LAUNCHERS",
    "Finished",
    "JobState",
    "LaunchEvent",
    "LaunchTask",
    "Launcher",
    "Queued",
    "Started",
    "get_launcher",
]
