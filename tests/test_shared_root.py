"""A root shared by a team: two real Unix users of one group take turns.

The root is what a team makes of a folder: its group, ``chmod 2770``
(group-writable, setgid). Both users have the strictest usual umask (077),
so nothing is group-readable unless exman makes it so. Needs root (CI runs
the tests as root); the users and group are made once, with a prefix of
their own, and left for the next run.
"""

from __future__ import annotations

import contextlib
import grp
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
GROUP = "exmtst-team"
USERS = ("exmtst-alice", "exmtst-bob")

SCRIPT = textwrap.dedent(
    """\
    import exman

    parser = exman.ExParser(root=exman.simpleroot(__file__), automark=["lr"])
    parser.add_argument("--lr", type=float, default=0.1)
    args = parser.parse_args()
    with args.safe_experiment:
        exman.log(loss=args.lr)
        exman.result(score=2 * args.lr)
    """
)

#: runs a command as the user sees it: exman's own entry points, umask 077
AS_USER = textwrap.dedent(
    """\
    import os
    import runpy
    import sys

    os.umask(0o077)
    what, args = sys.argv[1], sys.argv[2:]
    if what == "exman":
        from exman.cli import main

        sys.exit(main(args))
    if what == "index":
        import warnings

        import exman

        warnings.simplefilter("error")
        frame = exman.Index(args[0]).info(failed=True)
        print(sorted(frame["id"]), sorted(frame["status"].unique()))
        sys.exit(0)
    sys.argv = [what, *args]
    runpy.run_path(what, run_name="__main__")
    """
)


def _run(command: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{command}: {proc.returncode}\n{proc.stderr}")
    return proc


def _ensure_users() -> None:
    _run(["groupadd", "-f", GROUP])
    for user in USERS:
        if _run(["id", user], check=False).returncode != 0:
            _run(["useradd", "-M", "-N", "-g", GROUP, "-s", "/bin/sh", user])


@contextlib.contextmanager
def _python_reachable() -> Iterator[None]:
    """Let the users traverse the folders above this Python and the worktree
    that others may not enter (a Python installed under /root), until the
    end: to the group with an ACL where setfacl exists, else to everybody
    (the execute bit alone: the folder cannot be listed)."""
    folders = set()
    for start in (Path(sys.executable).resolve(), REPO, Path(sys.prefix).resolve()):
        folders.update(start.parents)
    closed = [f for f in sorted(folders) if not os.stat(f).st_mode & stat.S_IXOTH]
    acl = shutil.which("setfacl") is not None
    modes = {folder: stat.S_IMODE(os.stat(folder).st_mode) for folder in closed}
    try:
        for folder in closed:
            if acl:
                _run(["setfacl", "-m", f"g:{GROUP}:x", str(folder)])
            else:
                folder.chmod(modes[folder] | stat.S_IXOTH)
        yield
    finally:
        for folder in closed:
            if acl:
                _run(["setfacl", "-x", f"g:{GROUP}", str(folder)], check=False)
            else:
                folder.chmod(modes[folder])


@pytest.fixture(scope="module")
def team() -> Iterator[Path]:
    """A folder both users can use, holding a group-shared root ``exman``."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create the Unix users of the test (CI is root)")
    if shutil.which("useradd") is None or shutil.which("runuser") is None:
        pytest.skip("useradd or runuser is missing")
    _ensure_users()
    work = Path(tempfile.mkdtemp(prefix="exmtst-"))
    try:
        work.chmod(0o755)
        root = work / "exman"
        root.mkdir()
        shutil.chown(root, group=GROUP)
        root.chmod(0o2770)
        (work / "main.py").write_text(SCRIPT)
        (work / "as_user.py").write_text(AS_USER)
        spec = {"command": f"{sys.executable} main.py", "grid": {"lr": [0.1, 0.2]}}
        (work / "sweep.yaml").write_text(yaml.safe_dump(spec))
        with _python_reachable():
            yield work
    finally:
        shutil.rmtree(work)


def as_user(
    team: Path, user: str, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = ["env", f"PYTHONPATH={REPO}", f"HOME={team}", "EXMAN_HEARTBEAT=30"]
    command = ["runuser", "-u", user, "--", *env, sys.executable, "as_user.py", *args]
    proc = subprocess.run(
        command, cwd=team, capture_output=True, text=True, timeout=120, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{user}: {' '.join(args)} exited with {proc.returncode}\n"
            f"{proc.stdout}\n{proc.stderr}"
        )
    return proc


def test_two_users_of_a_group_share_one_root(team: Path) -> None:
    alice, bob = USERS
    root = str(team / "exman")
    as_user(team, alice, "main.py", "--lr", "0.1")
    as_user(team, alice, "index", root)  # alice's cache of the index
    as_user(team, alice, "exman", "sweep", "sweep.yaml")
    as_user(team, alice, "exman", "mark", "best", "1", "--root", root)

    # bob records, lists, marks, loads and sweeps among alice's files
    as_user(team, bob, "main.py", "--lr", "0.3")
    listed = as_user(team, bob, "exman", "ls", "--root", root).stdout
    assert all(f" {num} " in f" {listed} " for num in "1234"), listed
    as_user(team, bob, "exman", "mark", "best", "1", "4", "--root", root)
    as_user(team, bob, "exman", "mark", "lr/0.1", "4", "--root", root)
    loaded = as_user(team, bob, "index", root).stdout
    assert loaded.strip() == "[1, 2, 3, 4] ['completed']"
    bigger = {"command": f"{sys.executable} main.py", "grid": {"lr": [0.1, 0.2, 0.5]}}
    (team / "sweep.yaml").write_text(yaml.safe_dump(bigger))
    swept = as_user(team, bob, "exman", "sweep", "sweep.yaml")
    assert "2 completed" in swept.stdout + swept.stderr  # alice's tasks: skipped
    as_user(team, alice, "main.py", "--lr", "0.4")  # after bob's turn, alice's
    loaded = as_user(team, alice, "index", root).stdout
    assert loaded.strip() == "[1, 2, 3, 4, 5, 6] ['completed']"
    best = sorted(p.name.split("-")[0] for p in (team / "exman/marked/best").iterdir())
    assert best == ["000001", "000004"]

    # what exman made is the group's to read and, where it writes, to write
    gid = grp.getgrnam(GROUP).gr_gid
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                continue
            assert info.st_gid == gid, path
            wanted = 0o070 if stat.S_ISDIR(info.st_mode) else 0o040
            assert info.st_mode & wanted == wanted, f"{path}: {info.st_mode:o}"
    shared = ["lock", ".exman/counter", ".exman/tasks/lock"]
    shared += [f".exman/cache/{p.name}" for p in Path(root, ".exman/cache").iterdir()]
    for name in shared:
        assert Path(root, name).stat().st_mode & 0o060 == 0o060, name
