"""log.txt holds everything the run printed: file descriptors, not only
sys.stdout, in a script; the Python streams in a Jupyter kernel."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _run_helpers import record, the_run

#: every way a run prints that does not go through sys.stdout's object
EVERY_WRITER = """\
    import ctypes, logging, os, subprocess
    logging.basicConfig(format="logged: %(message)s")  # before the block
    with args.safe_experiment:
        print("from print")
        print("from print to stderr", file=sys.stderr)
        os.system("echo from os.system")
        subprocess.run(["sh", "-c", "echo child out; echo child err >&2"])
        os.write(1, b"raw fd 1\\n")
        os.write(2, b"raw fd 2\\n")
        logging.warning("a warning")
        ctypes.CDLL(None).printf(b"from C printf\\n")  # in C's buffer till flushed
        {end}
    print("after the block")
"""


def run_buffered(script: Path) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with C's and Python's usual buffering into a pipe."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("EXMAN_ROOT", "PYTHONUNBUFFERED")
    }
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=script.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "end,code",
    [("pass", 0), ("sys.exit(0)", 0), ("sys.exit(4)", 4), ("raise ValueError(5)", 1)],
)
def test_the_log_has_subprocesses_c_and_logging_and_the_terminal_too(
    make_script: Callable[..., Path], tmp_path: Path, end: str, code: int
) -> None:
    proc = run_buffered(make_script(EVERY_WRITER.format(end=end)))
    assert proc.returncode == code, proc.stderr
    folder = the_run(tmp_path / "exman")
    log = (folder / "log.txt").read_text()
    for line in (
        "from print",
        "from print to stderr",
        "from os.system",
        "child out",
        "child err",
        "raw fd 1",
        "raw fd 2",
        "logged: a warning",
        "from C printf",
    ):
        assert f"{line}\n" in log, line
    assert "after the block" not in log
    if end.startswith("raise"):
        # stdout and stderr are two pipes here: their lines keep their own
        # order, the traceback is whole, but the two may interleave
        assert "raise ValueError(5)\nValueError: 5\n" in log
    # and each still reached its own stream, as without exman
    out, err = proc.stdout.splitlines(), proc.stderr.splitlines()
    for line in ("from print", "from os.system", "child out", "raw fd 1"):
        assert line in out and line not in err
    for line in ("from print to stderr", "child err", "raw fd 2", "logged: a warning"):
        assert line in err and line not in out
    assert "from C printf" in out
    assert ("after the block" in out) == (end == "pass")


def test_a_lot_of_output_at_the_very_end_is_not_lost(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path
) -> None:
    body = """\
        import subprocess
        with args.safe_experiment:
            subprocess.run(["seq", "200000"])
            sys.exit(0)
    """
    proc = run(make_script(body), check=True)
    expected = "".join(f"{i}\n" for i in range(1, 200001))
    assert proc.stdout == expected
    assert (the_run(tmp_path / "exman") / "log.txt").read_text() == expected


def test_output_reaches_the_terminal_while_the_run_goes_on_and_sigterm_keeps_it(
    make_script: Callable[..., Path], tmp_path: Path
) -> None:
    body = """\
        import os, subprocess, time
        with args.safe_experiment:
            print("in python's buffer", end="")  # flushed by the SIGTERM handler
            # from a child, and in the same write as "ready": there before SIGTERM
            subprocess.run(["printf", "ready\\nno newline yet"])
            time.sleep(60)
    """
    script = make_script(body)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("EXMAN_ROOT", "PYTHONUNBUFFERED")
    }
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,  # readline() must not read ahead: communicate() would lose it
    )
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline() == b"ready\n"  # live: the run still sleeps
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGTERM
    assert out == b"no newline yetin python's buffer"
    folder = the_run(tmp_path / "exman")
    log = (folder / "log.txt").read_bytes()
    assert log == b"ready\nno newline yetin python's buffer"
    assert record(folder)["status"] == "interrupted"


def test_a_terminal_stays_a_terminal(
    make_script: Callable[..., Path], tmp_path: Path
) -> None:
    """Programs inside the block still see a terminal (colours, progress
    bars), and the log gets their bytes without the terminal's "\\r\\n"."""
    body = """\
        import subprocess
        with args.safe_experiment:
            print("python sees a tty:", sys.stdout.isatty(), sys.stderr.isatty())
            subprocess.run(["sh", "-c", "test -t 1 && test -t 2 && echo child too"])
            print("to stderr", file=sys.stderr)
    """
    script = make_script(body)
    master, slave = os.openpty()
    env = {k: v for k, v in os.environ.items() if k != "EXMAN_ROOT"}
    try:
        proc = subprocess.Popen(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=slave,
        )
        os.close(slave)
        chunks = queue.SimpleQueue[bytes]()

        def read() -> None:
            while True:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    data = b""
                chunks.put(data)
                if not data:
                    return

        import threading

        threading.Thread(target=read, daemon=True).start()
        assert proc.wait(timeout=60) == 0
        screen = b""
        while (data := chunks.get(timeout=10)) != b"":
            screen += data
    finally:
        os.close(master)
    assert b"python sees a tty: True True\r\n" in screen
    assert b"child too\r\n" in screen
    log = (the_run(tmp_path / "exman") / "log.txt").read_bytes()
    assert log == b"python sees a tty: True True\nchild too\nto stderr\n"


def test_in_a_jupyter_kernel_print_goes_to_the_log_and_the_notebook(
    tmp_path: Path,
) -> None:
    """A kernel's sys.stdout is not its fd 1: the Python-level copy is used."""
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    code = f"""\
import os, exman
os.environ.pop("EXMAN_ROOT", None)
parser = exman.ExParser(root={str(tmp_path / "exman")!r})
parser.add_argument("--lr", type=float, default=0.1)
args = parser.parse_args([])
fd1 = os.readlink("/proc/self/fd/1")
with args.safe_experiment:
    print("in the kernel", args.lr)
assert os.readlink("/proc/self/fd/1") == fd1
"""
    try:
        streams: list[str] = []
        errors: list[Any] = []

        def output(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "stream":
                streams.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                errors.append(msg["content"])

        reply = client.execute_interactive(code, timeout=60, output_hook=output)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert reply["content"]["status"] == "ok", errors
    assert "in the kernel 0.1\n" in "".join(streams)
    log = (the_run(tmp_path / "exman") / "log.txt").read_text()
    assert log == "in the kernel 0.1\n"


def test_a_forked_child_writes_into_the_log_and_dies_of_sigterm_at_once(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path
) -> None:
    """A forked child (a DataLoader worker) shares the pipe, not the thread."""
    body = """\
        import os, signal, time
        with args.safe_experiment:
            child = os.fork()
            if child == 0:
                print("from the forked child", flush=True)
                time.sleep(60)
                os._exit(0)
            time.sleep(0.5)
            start = time.monotonic()
            os.kill(child, signal.SIGTERM)
            _, status = os.waitpid(child, 0)
            print("child died of", os.WTERMSIG(status), "after",
                  round(time.monotonic() - start, 1), "s")
    """
    proc = run(make_script(body), check=True)
    log = (the_run(tmp_path / "exman") / "log.txt").read_text()
    assert "from the forked child\n" in log
    died = re.search(r"child died of (\d+) after ([\d.]+) s\n", log)
    assert died is not None and died.group(0) in proc.stdout
    assert int(died.group(1)) == signal.SIGTERM
    assert float(died.group(2)) < 2  # not the 5 s bound of a parent's stop


def test_a_resized_terminal_resizes_what_the_run_sees(
    make_script: Callable[..., Path], tmp_path: Path
) -> None:
    import fcntl
    import struct
    import termios
    import threading

    body = """\
        import subprocess, time
        with args.safe_experiment:
            print("before", tuple(os.get_terminal_size(1)), flush=True)
            deadline = time.monotonic() + 20
            while os.get_terminal_size(1).columns == 100:
                assert time.monotonic() < deadline, "never resized"
                time.sleep(0.02)
            print("after", tuple(os.get_terminal_size(1)), flush=True)
            code = "import os; print('child', tuple(os.get_terminal_size(1)))"
            subprocess.run([sys.executable, "-c", code])
    """
    script = make_script("import os\n" + textwrap.dedent(body))
    master, slave = os.openpty()

    def resize(rows: int, cols: int) -> None:
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    resize(40, 100)
    env = {k: v for k, v in os.environ.items() if k != "EXMAN_ROOT"}
    screen = bytearray()
    got_before = threading.Event()

    def read() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if not data:
                return
            screen.extend(data)
            if b"before" in screen:
                got_before.set()

    try:
        proc = subprocess.Popen(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=slave,
        )
        os.close(slave)
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            assert got_before.wait(30)
            resize(50, 123)  # the terminal was resized: the shell's SIGWINCH
            proc.send_signal(signal.SIGWINCH)
            assert proc.wait(timeout=60) == 0, bytes(screen)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        reader.join(10)
    finally:
        os.close(master)
    log = (the_run(tmp_path / "exman") / "log.txt").read_text()
    assert log == "before (100, 40)\nafter (123, 50)\nchild (123, 50)\n"


def test_the_last_words_before_a_crash_reach_the_terminal_and_the_log(
    make_script: Callable[..., Path], tmp_path: Path
) -> None:
    body = """\
        import ctypes
        with args.safe_experiment:
            print("before the crash", flush=True)
            ctypes.string_at(0)  # a segfault
    """
    script = make_script(body)
    env = {k: v for k, v in os.environ.items() if k != "EXMAN_ROOT"}
    proc = subprocess.run(
        [sys.executable, "-X", "faulthandler", str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGSEGV
    assert "Fatal Python error: Segmentation fault" in proc.stderr
    assert "main.py" in proc.stderr  # where it crashed
    assert "before the crash" in proc.stdout
    # the copying outlived the run: all of it is in the log too
    log = (the_run(tmp_path / "exman") / "log.txt").read_text()
    assert "before the crash\n" in log
    assert "Fatal Python error: Segmentation fault" in log
