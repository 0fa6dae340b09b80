"""The root folder: its layout, run ids, names, links and marks.

Every change to the tree of a root goes through :class:`Root`. Files are
written atomically (temporary file + rename) and links are relative, so a
root can be moved or rsync'ed and a process killed at any instant leaves
either the old state or the new one.
"""

from __future__ import annotations

import datetime
import os
import pathlib
import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from .errors import ExmanError, RunNotFound
from .files import atomic_write, make_dir, sync_dir, sync_file
from .ids import claim_id

if TYPE_CHECKING:
    from .lock import FileLock

__all__ = [
    "DIR_TIME_FORMAT",
    "ROOT_ENV",
    "ExmanError",
    "Root",
    "RunNotFound",
    "RunPlace",
    "atomic_write",
    "check_name",
    "path_component",
    "run_id",
]

StrPath = Union[str, "os.PathLike[str]"]

DIR_TIME_FORMAT = "%Y-%m-%d-%H-%M-%S"
#: a run folder: ``<id>-<YYYY-mm-dd-HH-MM-SS>[-<name>]``
RUN_PATTERN = re.compile(r"^(\d+)-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}(?:-|$)")
#: where runs live; ``index`` and ``marked`` only hold links to them
RUN_PLACES = ("runs", "tmp", "fails")
STATE_DIR = ".exman"
#: the environment variable naming the root (ExParser, the command, launchers)
ROOT_ENV = "EXMAN_ROOT"


#: the value of an automark name that is not an argument (see Root.automark_key)
NO_VALUE = object()


def run_id(name: str) -> int | None:
    """The id of a run folder or index file name, or None if it is not one."""
    m = RUN_PATTERN.match(name)
    return int(m.group(1)) if m else None


def check_name(name: str, what: str = "name") -> str:
    """Refuse a user-given name that could leave the folder it is put in.

    :raises ExmanError: the name is empty, contains a path separator, a NUL
        byte or ``..``.
    """
    if not name.strip():
        raise ExmanError(f"{what} must not be empty")
    bad = [c for c in ("/", "\\", "\0") if c in name]
    if bad or ".." in name or name == ".":
        raise ExmanError(
            f"{what} {name!r} is refused: it must not contain '/', '\\', "
            "a NUL byte or '..'"
        )
    return name


def path_component(value: object) -> str:
    """A value made safe as one folder name (used for automark values).

    ``str(value)`` with ``/``, ``\\``, NUL and ``%`` escaped as ``%XX``;
    ``.``, ``..`` and the empty string are escaped too so that the result
    always names a child of its parent folder.
    """
    text = str(value)
    out = text.replace("%", "%25").replace("/", "%2F").replace("\\", "%5C")
    out = out.replace("\0", "%00").replace("..", "%2E%2E")
    if out in ("", "."):
        out = "%2E" if out else "%00"
    return out


def check_key(key: StrPath) -> tuple[str, ...]:
    """Split a mark key like ``best/lr`` into its parts, refusing escapes.

    :raises ExmanError: the key is absolute, empty or has a ``..`` part.
    """
    text = os.fspath(key)
    if not text or text.startswith(("/", "\\")) or os.path.isabs(text):
        raise ExmanError(f"mark key {text!r} must be a relative path like 'best/lr'")
    parts = tuple(p for p in re.split(r"[/\\]", text) if p not in ("", "."))
    if not parts or any(".." in p or "\0" in p for p in parts):
        raise ExmanError(
            f"mark key {text!r} is refused: it must be a relative path "
            "without '..' parts"
        )
    return parts


@dataclass(frozen=True)
class RunPlace:
    """Where a new run was put: its id, folder name and absolute folder."""

    id: int
    name: str
    path: pathlib.Path
    time: datetime.datetime
    tmp: bool

    @property
    def relpath(self) -> pathlib.Path:
        """The folder relative to the root (``runs/<name>`` or ``tmp/<name>``)."""
        return pathlib.Path("tmp" if self.tmp else "runs", self.name)


class Root:
    """An exman root folder.

    :param path: the folder; it is created (with its sub-folders) by
        :meth:`ensure`, not here, so that a Root can point at a folder that
        does not exist yet.
    """

    def __init__(self, path: StrPath) -> None:
        self.path = pathlib.Path(os.path.abspath(os.path.expanduser(path)))

    def __repr__(self) -> str:
        return f"Root({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    def __truediv__(self, other: StrPath) -> pathlib.Path:
        # ``index.root / "runs"``: exman 0.1.9's Index.root was a Path
        return self.path / other

    # -- layout ------------------------------------------------------------
    @property
    def runs(self) -> pathlib.Path:
        return self.path / "runs"

    @property
    def index(self) -> pathlib.Path:
        return self.path / "index"

    @property
    def marked(self) -> pathlib.Path:
        return self.path / "marked"

    @property
    def fails(self) -> pathlib.Path:
        return self.path / "fails"

    @property
    def tmp(self) -> pathlib.Path:
        return self.path / "tmp"

    @property
    def state(self) -> pathlib.Path:
        """exman's own state: counter, caches, sweep records."""
        return self.path / STATE_DIR

    @property
    def lock_path(self) -> pathlib.Path:
        return self.path / "lock"

    def exists(self) -> bool:
        """Whether the folder looks like an exman root (``runs`` and ``index``)."""
        return self.runs.is_dir() and self.index.is_dir()

    def ensure(self) -> Root:
        """Create the root and its sub-folders if they are missing."""
        make_dir(self.path, exist_ok=True)
        for sub in ("runs", "index", "marked", "fails", "tmp", STATE_DIR):
            make_dir(self.path / sub, exist_ok=True)
        return self

    def lock(self, timeout: float = -1) -> FileLock:
        """The root's file lock (a context manager; see :mod:`exman.record.lock`)."""
        from .lock import FileLock

        return FileLock(str(self.lock_path), timeout=timeout)

    # -- ids ---------------------------------------------------------------
    def _scan_max_id(self) -> int:
        """The highest id in the run folders: when the counter cannot be trusted."""
        best = 0
        for place in RUN_PLACES:
            try:
                entries = os.scandir(self.path / place)
            except FileNotFoundError:
                continue
            with entries:
                for entry in entries:
                    num = run_id(entry.name)
                    if num is not None and num > best:
                        best = num
        return best

    def _stamp(self) -> str:
        """When ``runs/`` and ``tmp/`` last changed, saved with the counter."""
        times = []
        for folder in (self.runs, self.tmp):
            try:
                times.append(str(folder.stat().st_mtime_ns))
            except FileNotFoundError:
                times.append("-")
        return " ".join(times)

    def last_id(self) -> int:
        """The last id the counter handed out (0 if none yet): no lock, no scan.

        Runs created from now on have larger ids.
        """
        try:
            first = (self.state / "counter").read_text().split("\n", 1)[0]
            return int(first.strip() or 0)
        except (OSError, ValueError):
            return 0

    def allocate(
        self,
        *,
        tmp: bool = False,
        name: str | None = None,
        zfill: int = 6,
        now: datetime.datetime | None = None,
    ) -> RunPlace:
        """Give a new run its id and an empty folder.

        The id comes from ``.exman/counter`` under the root's lock, so this
        costs the same with 10 runs or a million. When the counter is missing
        (a root made by exman 0.1.9), damaged, or older than the last change
        of ``runs/`` or ``tmp/``, the highest id in the folders is taken into
        account too, so an id is never given twice. The id is claimed
        exclusively (:mod:`exman.record.ids`), so that it stays unique where
        the lock does nothing; the folder and the counter are flushed to the
        disk before this returns.
        """
        if name is not None and name != "":
            check_name(name, "run name")
        counter = self.state / "counter"
        with self.lock():
            try:
                lines = counter.read_text().split("\n")
                last, stamp = int(lines[0].strip() or 0), lines[1:2]
            except FileNotFoundError:
                make_dir(self.state, exist_ok=True)
                last, stamp = 0, []
            except ValueError:  # a damaged counter: the folders know better
                last, stamp = 0, []
            if stamp != [self._stamp()]:
                # no counter (a root of exman 0.1.9), a damaged one, or runs/
                # or tmp/ changed since it was written (exman 0.1.9 on the same
                # root, a process killed before it wrote the counter, a run
                # moved to fails/): the folders know better
                last = max(last, self._scan_max_id())
            num = last + 1
            parent = self.tmp if tmp else self.runs
            while True:
                # the claim, not the lock, decides: the lock may be a no-op
                # (NFS without locking); ids of earlier claims are skipped
                if not claim_id(self.state, num):
                    num += 1
                    continue
                time = now or datetime.datetime.now()
                folder = f"{str(num).zfill(zfill)}-{time.strftime(DIR_TIME_FORMAT)}"
                if name:
                    folder = f"{folder}-{name}"
                try:
                    make_dir(parent / folder)
                    break
                except FileExistsError:  # a writer that does not claim (0.1.9)
                    num += 1
            atomic_write(counter, f"{num}\n{self._stamp()}\n")
        # to the disk outside the lock, which others wait for: a counter that
        # a power loss tore reads as damaged, and the folders are scanned
        sync_file(counter)
        sync_dir(self.state)
        sync_dir(parent)
        return RunPlace(num, folder, parent / folder, time.replace(microsecond=0), tmp)

    # -- links -------------------------------------------------------------
    def _link(self, link: pathlib.Path, target: pathlib.Path, is_dir: bool) -> None:
        rel = os.path.relpath(target, link.parent)
        make_dir(link.parent, exist_ok=True)
        try:
            link.symlink_to(rel, target_is_directory=is_dir)
        except FileExistsError:
            if os.readlink(link) != rel:
                raise

    def index_link(self, name: str) -> pathlib.Path:
        return self.index / f"{name}.yaml"

    def link_index(self, name: str) -> pathlib.Path:
        """Link ``index/<name>.yaml`` to ``runs/<name>/params.yaml``."""
        link = self.index_link(name)
        self._link(link, self.runs / name / "params.yaml", is_dir=False)
        return link

    def mark_dir(self, key: StrPath) -> pathlib.Path:
        """The folder of a mark key, refusing keys that would leave ``marked/``."""
        return self.marked.joinpath(*check_key(key))

    def link_mark(self, key: StrPath, name: str, place: str = "runs") -> pathlib.Path:
        """Link ``marked/<key>/<name>`` to the run folder."""
        link = self.mark_dir(key) / check_name(name, "run name")
        self._link(link, self.path / place / name, is_dir=True)
        return link

    def automark_key(self, pairs: Iterable[tuple[str, object]]) -> pathlib.Path:
        """``a/<value>/b/<value>`` with every value made a safe folder name.

        A pair whose value is :data:`NO_VALUE` gives its key alone: an
        automark name that is not an argument is a constant folder (as in
        exman 0.1.9: ``automark=["user", "constant"]``).
        """
        parts: list[str] = []
        for key, value in pairs:
            parts.append(path_component(key))
            if value is not NO_VALUE:
                parts.append(path_component(value))
        return pathlib.Path(*parts)

    # -- removing ----------------------------------------------------------
    def unlink(self, link: StrPath) -> bool:
        """Remove one link under ``index/`` or ``marked/``; False if already gone.

        :raises ExmanError: ``link`` is not a symlink under ``index/`` or
            ``marked/`` (exman removes only the links it makes).
        """
        path = pathlib.Path(os.path.abspath(link))
        if not os.path.lexists(path):
            return False
        if not (path.parent == self.index or self.marked in path.parents):
            raise ExmanError(f"{path} is not in {self.index} or {self.marked}")
        if not path.is_symlink():
            raise ExmanError(f"{path} is not a link: exman removes only its links")
        try:
            os.unlink(path)
        except FileNotFoundError:  # somebody else removed it first
            return False
        return True

    def unlink_index(self, name: str) -> bool:
        """Remove ``index/<name>.yaml``; False if it was not there."""
        return self.unlink(self.index_link(check_name(name, "run name")))

    def unlink_mark(self, key: StrPath, name: str) -> bool:
        """Remove ``marked/<key>/<name>`` and the key folders left empty."""
        folder = self.mark_dir(key)
        removed = self.unlink(folder / check_name(name, "run name"))
        self.prune_marks(folder)
        return removed

    def prune_marks(self, folder: StrPath) -> None:
        """Remove ``folder`` and its parents below ``marked/`` while empty."""
        path = pathlib.Path(os.path.abspath(folder))
        while self.marked in path.parents:
            try:
                path.rmdir()
            except OSError:  # not empty (or gone): the parents are not empty either
                return
            path = path.parent

    def mark_links(self) -> Iterator[pathlib.Path]:
        """Every link under ``marked/``, dangling or not (links are not followed)."""
        for folder, dirs, files in os.walk(self.marked):
            for entry in (*dirs, *files):
                path = pathlib.Path(folder, entry)
                if path.is_symlink():
                    yield path

    def move_to_fails(
        self, path: StrPath, links: Iterable[StrPath] | None = None
    ) -> pathlib.Path:
        """Move a failed run's folder to ``fails/`` and remove the links to it.

        :param links: the links to remove; by default its index link and
            every mark link with its name.
        :returns: the folder's new place.
        """
        folder = pathlib.Path(path)
        name = folder.name
        make_dir(self.fails, exist_ok=True)
        target = self.fails / name
        os.replace(folder, target)
        if links is None:
            marks = [link for link in self.mark_links() if link.name == name]
            links = [self.index_link(name), *marks]
        for link in links:
            try:
                os.unlink(link)
            except FileNotFoundError:
                pass
        return target

    def remove_run(self, path: StrPath) -> None:
        """Delete a run folder of this root with everything in it.

        :raises ExmanError: ``path`` is not a run folder in ``runs/``,
            ``tmp/`` or ``fails/``.
        """
        folder = pathlib.Path(os.path.abspath(path))
        places = [self.path / place for place in RUN_PLACES]
        if (
            folder.parent not in places
            or run_id(folder.name) is None
            or folder.is_symlink()
            or not folder.is_dir()
        ):
            raise ExmanError(f"{folder} is not a run folder of {self.path}")
        shutil.rmtree(folder)

    # -- finding runs ------------------------------------------------------
    def iter_runs(self, places: Iterable[str] = RUN_PLACES) -> Iterator[pathlib.Path]:
        """Every run folder in the given places (``runs``, ``tmp``, ``fails``)."""
        for place in places:
            try:
                entries = os.scandir(self.path / place)
            except FileNotFoundError:
                continue
            with entries:
                for entry in entries:
                    if run_id(entry.name) is not None and entry.is_dir():
                        yield pathlib.Path(entry.path)

    def find(self, num: int, places: Iterable[str] = RUN_PLACES) -> pathlib.Path:
        """The folder of run ``num``.

        :raises RunNotFound: no run has this id.
        """
        for path in self.iter_runs(places):
            if run_id(path.name) == num:
                return path
        raise RunNotFound(f"run {num} not found in {self.path}")
