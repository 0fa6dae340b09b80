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
import stat
from collections.abc import Iterable, Iterator

from .errors import ExmanError, RunNotFound
from .files import Flushing, StrPath, atomic_write, make_dir
from .ids import claim_id, format_counter, read_counter
from .links import make_link, prune_empty, remove_link, walk_links
from .names import (
    RUN_PLACES,
    check_component,
    check_key,
    check_name,
    path_component,
    run_id,
)

# not typing's: importing typing would slow every run's start
TYPE_CHECKING = False
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

DIR_TIME_FORMAT = "%Y-%m-%d-%H-%M-%S"
STATE_DIR = ".exman"
#: the folders of a root, made by Root.ensure
SUB_FOLDERS = ("runs", "index", "marked", "fails", "tmp", STATE_DIR)
#: the environment variable naming the root (ExParser, the command, launchers)
ROOT_ENV = "EXMAN_ROOT"
#: what exman.log and exman.result write in a run folder (see
#: exman.record.metrics), named here, below both their writer and the run's
#: end, which copies them (exman.record.snapshot)
METRICS_FILE = "metrics.jsonl"
RESULTS_FILE = "results.json"


#: the value of an automark name that is not an argument (see Root.automark_key)
NO_VALUE = object()


class RunPlace:
    """Where a new run was put: its id, folder name and absolute folder;
    :meth:`flushed` waits until its id is on the disk."""

    __slots__ = ("flushing", "id", "name", "path", "time", "tmp")

    def __init__(
        self,
        id: int,
        name: str,
        path: pathlib.Path,
        time: datetime.datetime,
        tmp: bool,
        flushing: Flushing | None = None,
    ) -> None:
        self.id = id
        self.name = name
        self.path = path
        self.time = time
        self.tmp = tmp
        self.flushing = flushing

    def flushed(self) -> None:
        """Return once the id counter and the new folder's name are on the
        disk (they are flushed meanwhile by a thread of their own)."""
        if self.flushing is not None:
            self.flushing.wait()

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
        """Create the root and its sub-folders if they are missing.

        :raises ExmanError: the root or a sub-folder cannot be made or is
            no folder of the root (see :meth:`check_layout`).
        """
        if self._complete():  # every run's start: one look at each, no mkdir
            return self
        try:
            make_dir(self.path, exist_ok=True)
        except FileExistsError:
            raise ExmanError(
                f"cannot use {self.path} as an exman root: it is not a folder"
            ) from None
        except OSError as e:
            raise ExmanError(
                f"cannot use {self.path} as an exman root: {e.strerror}"
            ) from None
        for sub in SUB_FOLDERS:
            try:
                make_dir(self.path / sub)
            except FileExistsError:
                pass  # or a file, or a link: check_layout says which
            except OSError as e:
                raise ExmanError(
                    f"cannot create {self.path / sub}: {e.strerror}"
                ) from None
        return self.check_layout()

    def _complete(self) -> bool:
        """Whether every sub-folder is there, a real folder (not a link)."""
        top = os.fspath(self.path)
        for sub in SUB_FOLDERS:
            try:
                if not stat.S_ISDIR(os.lstat(os.path.join(top, sub)).st_mode):
                    return False
            except OSError:
                return False
        return True

    def check_layout(self) -> Root:
        """Refuse a root whose sub-folders are links or files.

        ``runs/``, ``index/``, ``marked/``, ``fails/``, ``tmp/`` and
        ``.exman/`` must be real folders: a symbolic link would take what
        exman reads, writes and deletes out of the root.

        :raises ExmanError: one is a symbolic link, or not a folder.
        """
        for sub in SUB_FOLDERS:
            path = self.path / sub
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                continue
            except OSError as e:
                raise ExmanError(f"cannot use {path}: {e.strerror}") from None
            if stat.S_ISLNK(mode):
                raise ExmanError(
                    f"{path} is a symbolic link: exman does not follow links out "
                    f"of the root; make {sub}/ a folder of {self.path}"
                )
            if not stat.S_ISDIR(mode):
                raise ExmanError(
                    f"{path} is not a folder: {self.path} is not a usable exman root"
                )
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
            found = read_counter(str(self.state / "counter"))
        except OSError:
            return 0
        return 0 if found is None else found[0]

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
        the lock does nothing. The folder and the counter are being flushed
        to the disk when this returns, by a thread of their own, so that the
        caller's own flushes (params.yaml) wait for the disk side by side
        with them: :meth:`RunPlace.flushed` waits for the end.
        """
        if name is not None and name != "":
            check_name(name, "run name")
        counter = self.state / "counter"
        with self.lock():
            found = read_counter(str(counter))
            # a missing or damaged counter (an absurd id, text): the folders
            # know better, as in a root of exman 0.1.9
            last, stamp = (0, None) if found is None else found
            if found is None:
                make_dir(self.state, exist_ok=True)
            if stamp != self._stamp():
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
            try:
                atomic_write(counter, format_counter(num, self._stamp()))
            except BaseException:  # a full disk: no empty folder stays behind
                (parent / folder).rmdir()
                raise
        # to the disk outside the lock, which others wait for: a counter that
        # a power loss tore reads as damaged, and the folders are scanned
        flushing = Flushing((counter,), (self.state, parent))
        when = time.replace(microsecond=0)
        return RunPlace(num, folder, parent / folder, when, tmp, flushing)

    # -- links -------------------------------------------------------------
    def index_link(self, name: str) -> pathlib.Path:
        return self.index / f"{name}.yaml"

    def link_index(self, name: str) -> pathlib.Path:
        """Link ``index/<name>.yaml`` to ``runs/<name>/params.yaml``."""
        link = self.index_link(name)
        make_link(link, self.runs / name / "params.yaml", is_dir=False)
        return link

    def mark_dir(self, key: StrPath) -> pathlib.Path:
        """The folder of a mark key, refusing keys that would leave ``marked/``."""
        return self.marked.joinpath(*check_key(key))

    def link_mark(self, key: StrPath, name: str, place: str = "runs") -> pathlib.Path:
        """Link ``marked/<key>/<name>`` to the run folder."""
        link = self.mark_dir(key) / check_name(name, "run name")
        make_link(link, self.path / place / name, is_dir=True)
        return link

    def automark_key(self, pairs: Iterable[tuple[str, object]]) -> pathlib.Path:
        """``a/<value>/b/<value>`` with every value made a safe folder name.

        A pair whose value is :data:`NO_VALUE` gives its key alone: an
        automark name that is not an argument is a constant folder (as in
        exman 0.1.9: ``automark=["user", "constant"]``).

        :raises ExmanError: a value is too long for a folder name.
        """
        parts: list[str] = []
        for key, value in pairs:
            parts.append(check_component(path_component(key), "automark name"))
            if value is not NO_VALUE:
                part = path_component(value)
                check_component(part, f"the value of automark {key!r},")
                parts.append(part)
        return pathlib.Path(*parts)

    # -- removing ----------------------------------------------------------
    def unlink(self, link: StrPath) -> bool:
        """Remove one link under ``index/`` or ``marked/``; False if already gone.

        :raises ExmanError: ``link`` is not a symlink under ``index/`` or
            ``marked/`` (exman removes only the links it makes).
        """
        path = pathlib.Path(os.path.abspath(link))
        if not (path.parent == self.index or self.marked in path.parents):
            raise ExmanError(f"{path} is not in {self.index} or {self.marked}")
        return remove_link(path)

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
        prune_empty(pathlib.Path(os.path.abspath(folder)), self.marked)

    def mark_links(self) -> Iterator[pathlib.Path]:
        """Every link under ``marked/``, dangling or not (links are not followed)."""
        return walk_links(self.marked)

    def move_to_fails(self, path: StrPath) -> pathlib.Path:
        """Move a failed run's folder to ``fails/``; its links follow it.

        See :func:`exman.record.removal.move_to_fails`.
        """
        from .removal import move_to_fails

        return move_to_fails(self, path)

    def abandon(self, name: str, path: StrPath) -> None:
        """Undo a run whose creation failed.

        See :func:`exman.record.removal.abandon`.
        """
        from .removal import abandon

        abandon(self, name, path)

    def remove_run(self, path: StrPath) -> None:
        """Delete a run folder of this root with everything in it.

        See :func:`exman.record.removal.remove_run`.
        """
        from .removal import remove_run

        remove_run(self, path)

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
                    # a link is no run folder: it would lead out of the root
                    if run_id(entry.name) is not None and entry.is_dir(
                        follow_symlinks=False
                    ):
                        yield pathlib.Path(entry.path)

    def run_links(self, places: Iterable[str] = RUN_PLACES) -> list[pathlib.Path]:
        """Entries named like runs that are symbolic links (refused as runs)."""
        found = []
        for place in places:
            try:
                entries = os.scandir(self.path / place)
            except FileNotFoundError:
                continue
            with entries:
                found += [
                    pathlib.Path(e.path)
                    for e in entries
                    if run_id(e.name) is not None and e.is_symlink()
                ]
        return sorted(found)

    def find(self, num: int, places: Iterable[str] = RUN_PLACES) -> pathlib.Path:
        """The folder of run ``num``.

        :raises RunNotFound: no run has this id.
        """
        for path in self.iter_runs(places):
            if run_id(path.name) == num:
                return path
        raise RunNotFound(f"run {num} not found in {self.path}")
