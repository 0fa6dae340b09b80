"""Writing files and folders under a root: atomically, durably, shared.

* **Atomic.** :func:`atomic_write` writes a temporary file in the same
  folder and renames it into place: readers see the old content or the new
  one, never a part of it.
* **Durable** (when asked). The temporary file is flushed to the disk
  before the rename and the folder after it (:func:`sync_dir`), so that the
  new content survives a power loss once the call returns. It costs a few
  milliseconds on a disk, so only the files that must survive ask for it.
  :class:`Flushing` flushes files and folders on a thread of its own while
  the caller goes on (a new run's id while its params.yaml is written).
* **Shared.** A file or folder made in a folder that its group may write
  (a root shared by a team: ``chmod g+rwxs``) gets that folder's group
  permissions, whatever the umask of the process that made it; so every
  member of the group can go on writing the root. Elsewhere nothing is
  changed.
"""

from __future__ import annotations

import _thread
import os

__all__ = [
    "Flushing",
    "atomic_write",
    "group_bits",
    "make_dir",
    "open_append",
    "share",
    "sync_dir",
    "sync_file",
]

# not typing's: importing typing would slow every run's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO, Union

    StrPath = Union[str, "os.PathLike[str]"]
else:
    StrPath = str  # the alias is for the type checker: annotations only

_GROUP = 0o070
_GROUP_WRITE = 0o020
#: what a file takes of its folder's group bits (no execute)
_FILE_BITS = 0o060


def group_bits(folder: StrPath) -> int:
    """The group permission bits that what is made in ``folder`` should get.

    The folder's group bits when its group may write it, else 0 (and 0 when
    it cannot be read).
    """
    try:
        mode = os.stat(folder).st_mode
    except OSError:
        return 0
    return mode & _GROUP if mode & _GROUP_WRITE else 0


def share(fd: int, bits: int, *, folder: bool = False) -> None:
    """Add the group ``bits`` (from :func:`group_bits`) to the open file ``fd``.

    A file made by somebody else (a file we only opened) is left as it is.
    """
    add = bits if folder else bits & _FILE_BITS
    if not add:
        return
    try:
        mode = os.fstat(fd).st_mode & 0o7777
        if mode & add != add:
            os.fchmod(fd, mode | add)
    except PermissionError:
        pass


def make_dir(path: StrPath, *, exist_ok: bool = False) -> bool:
    """Create the folder ``path``, shared as its parent is (see above).

    Missing parents are created first, each shared as its own parent.

    :returns: True when this call created it.
    :raises FileExistsError: it exists and ``exist_ok`` is false.
    """
    text = os.fspath(path)
    try:
        os.mkdir(text)
    except FileNotFoundError:
        parent = os.path.dirname(os.path.abspath(text))
        if parent == os.path.abspath(text):
            raise
        make_dir(parent, exist_ok=True)
        return make_dir(text, exist_ok=exist_ok)
    except FileExistsError:
        if exist_ok and os.path.isdir(text):
            return False
        raise
    bits = group_bits(os.path.dirname(os.path.abspath(text)))
    if bits:
        fd = os.open(text, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            share(fd, bits, folder=True)
        finally:
            os.close(fd)
    return True


def open_append(path: StrPath) -> BinaryIO:
    """``open(path, "ab")``: a log to append to, shared as its folder is."""
    f = open(path, "ab")  # noqa: SIM115 - the caller closes it
    try:
        share(f.fileno(), group_bits(os.path.dirname(os.fspath(path)) or "."))
    except OSError:
        f.close()
        raise
    return f


def _sync(path: StrPath, flags: int) -> None:
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # a file system that cannot (some network ones)
        pass
    finally:
        os.close(fd)


def sync_file(path: StrPath) -> None:
    """Flush the file ``path`` to the disk, if it can be opened."""
    _sync(path, os.O_RDONLY)


def sync_dir(path: StrPath) -> None:
    """Flush the entries of folder ``path`` (new, renamed files) to the disk."""
    _sync(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


class Flushing:
    """Files and folders flushed to the disk by a thread of their own, while
    the caller goes on; :meth:`wait` returns once they are on the disk.

    Each flush waits for the disk, and flushes that wait together cost
    little more than one: the caller's own flushes meanwhile share a
    journal commit with these (ext4, XFS). A process that cannot start a
    thread flushes at once.
    """

    __slots__ = ("_done",)

    def __init__(
        self, files: tuple[StrPath, ...], folders: tuple[StrPath, ...]
    ) -> None:
        self._done = _thread.allocate_lock()
        self._done.acquire()
        try:
            _thread.start_new_thread(self._flush, (files, folders))
        except RuntimeError:  # no thread to be had (the interpreter ends)
            self._flush(files, folders)

    def _flush(self, files: tuple[StrPath, ...], folders: tuple[StrPath, ...]) -> None:
        try:
            for path in files:
                sync_file(path)
            for path in folders:
                sync_dir(path)
        finally:
            self._done.release()

    def wait(self) -> None:
        """Return once every flush is done (at once, after the first call)."""
        with self._done:
            pass


def atomic_write(path: StrPath, data: str | bytes, *, durable: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    Readers see the old content or the new one, never a part of it.

    :param durable: flush the file and its folder to the disk before
        returning, so that the new content survives a power loss.
    """
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    tmp = f"{path}.{os.getpid()}.{_thread.get_ident()}.tmp"
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        with open(tmp, "wb") as f:
            f.write(raw)
            bits = group_bits(folder)
            if bits:
                share(f.fileno(), bits)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if durable:
        sync_dir(folder)
