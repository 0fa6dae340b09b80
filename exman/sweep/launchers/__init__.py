"""Launchers: where the tasks of a sweep run (see :mod:`.base`)."""

from __future__ import annotations

from .base import (
    LAUNCHERS,
    Finished,
    Launcher,
    LaunchEvent,
    LaunchTask,
    Started,
    get_launcher,
)

__all__ = [
    "LAUNCHERS",
    "Finished",
    "LaunchEvent",
    "LaunchTask",
    "Launcher",
    "Started",
    "get_launcher",
]
