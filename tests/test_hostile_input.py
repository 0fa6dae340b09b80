"""Input that tries to hurt: alias bombs, control characters, absurd values,
names too long, and roots that are not what they seem. Each is refused
with a clear error that names the file or value, and nothing is lost."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import exman
from exman.cli import main
from exman.index import SkippedRunWarning
from exman.record.params import ParamsError, load_params

#: 425 bytes that expand to 10**7 values through nested aliases
ALIAS_BOMB = "a0: &a0 [x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 8)
)


def exman_cli(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The ``exman`` command in a real process."""
    full = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "exman", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=60,
    )


# -- item 6: the alias bomb --------------------------------------------------------
def test_an_alias_bomb_is_refused_in_time_linear_in_its_size(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    start = time.perf_counter()
    with pytest.raises(ParamsError, match=r"bomb\.yaml: .*aliases expand"):
        load_params(path)
    assert time.perf_counter() - start < 1
    # a document that refers to itself is built as a reference, not refused
    from exman.record.params import load_yaml

    got = load_yaml("&a [1, *a]\n")
    assert got[0] == 1 and got[1] is got


def test_an_alias_bomb_in_a_run_is_skipped_by_index_and_ls(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path
) -> None:
    script = make_script()
    run(script, check=True)
    run(script, "--lr", "0.5", check=True)
    root = tmp_path / "exman"
    bad = sorted((root / "runs").iterdir())[0]
    (bad / "params.yaml").write_text(ALIAS_BOMB + "id: 1\n")
    start = time.perf_counter()
    with pytest.warns(SkippedRunWarning, match="aliases expand"):
        df = exman.Index(root, cache=False).info()
    assert df.id.tolist() == [2]
    proc = exman_cli("--root", str(root), "ls")
    assert proc.returncode == 0, proc.stderr
    assert "aliases expand" in proc.stderr
    assert time.perf_counter() - start < 30


def test_files_larger_than_a_load_reads_are_refused_and_named(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path
) -> None:
    """A results.json or run.json of more than 16 MiB is not read: the run
    is kept, without its results or with its status unknown, and the
    warning names the file."""
    from exman.look.outcome import MAX_FILE

    script = make_script()
    for lr in ("0.1", "0.2", "0.3"):
        run(script, "--lr", lr, check=True)
    root = tmp_path / "exman"
    first, second, _ = sorted((root / "runs").iterdir())
    padding = " " * (MAX_FILE + 1)
    (first / "results.json").write_text('{"acc": 1.0' + padding + "}")
    run_json = (second / "run.json").read_text()
    (second / "run.json").write_text(run_json[:-1] + padding + "}")
    with pytest.warns(SkippedRunWarning) as caught:
        df = exman.Index(root, cache=False).info()
    messages = sorted(str(w.message) for w in caught)
    assert "results.json is larger than 16 MiB" in messages[0], messages
    assert "unreadable run.json (larger than 16 MiB)" in messages[1], messages
    assert df.id.tolist() == [1, 2, 3]
    assert df.status.tolist() == ["completed", "unknown", "completed"]
    assert "acc" not in df.columns


def test_an_alias_bomb_as_config_is_a_usage_error_naming_the_file(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path
) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(ALIAS_BOMB)
    proc = run(make_script(), "--config", str(bomb), timeout=20)
    assert proc.returncode == 2
    assert f"{bomb}: invalid YAML: its aliases expand" in proc.stderr
    assert not (tmp_path / "exman" / "runs").exists()


# -- items 15 and 14: names, keys and automark values ------------------------------
@pytest.mark.parametrize("char", ["\n", "\t", "\x1b", "\x7f", "\r"])
def test_control_characters_are_refused_in_names(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path, char: str
) -> None:
    proc = run(make_script(), "--name", f"a{char}b")
    assert proc.returncode == 2
    assert "control characters" in proc.stderr
    assert not (tmp_path / "exman" / "runs").exists()


@pytest.mark.parametrize("char", ["\n", "\x1b"])
def test_control_characters_are_refused_in_mark_keys(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path, char: str
) -> None:
    run(make_script(), check=True)
    root = tmp_path / "exman"
    proc = exman_cli("--root", str(root), "mark", f"best{char}x", "1")
    assert proc.returncode == 2
    assert "control characters" in proc.stderr
    assert "\x1b" not in proc.stderr
    assert list((root / "marked").iterdir()) == []


def test_ls_and_show_print_values_without_raw_escapes(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path
) -> None:
    script = make_script()
    evil = "\x1b]0;owned\x07\x1b[31mred[/]\nnext"
    run(script, "--model", evil, check=True)
    run(script, check=True)
    root = tmp_path / "exman"
    listing = exman_cli("--root", str(root), "ls")
    shown = exman_cli("--root", str(root), "show", "1")
    for proc in (listing, shown):
        assert proc.returncode == 0, proc.stderr
        assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout
        assert "\\x1b]0;owned\\x07\\x1b[31mred[/]\\nnext" in proc.stdout
    assert len(listing.stdout.splitlines()) == 3  # a header and one line per run


def test_an_automark_value_too_long_is_refused_before_the_run_exists(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path
) -> None:
    script = make_script(parser_kwargs=", automark=['model']")
    proc = run(script, "--model", "m" * 300)
    assert proc.returncode == 2
    assert "automark 'model'" in proc.stderr and "300 bytes" in proc.stderr
    root = tmp_path / "exman"
    assert not (root / "runs").exists() or list((root / "runs").iterdir()) == []
    assert not (root / "fails").exists() or list((root / "fails").iterdir()) == []
    run(script, "--model", "m" * 255, check=True)  # the longest that fits


# -- item 16: the counter -----------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    ["99999999999999999999999\n", "-5\n", "1000000000000000000\n"],
)
def test_a_corrupt_counter_is_recovered_from_the_folders(root: Path, text: str) -> None:
    store = exman.Root(root).ensure()
    first = store.allocate()
    counter = root / ".exman" / "counter"
    stamp = counter.read_text().split("\n")[1]
    counter.write_bytes((text.rstrip("\n") + "\n" + stamp + "\n").encode("latin-1"))
    second = store.allocate()
    assert second.id == first.id + 1
    assert store.last_id() == second.id


def test_an_absurd_counter_gives_an_id_the_index_shows(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path
) -> None:
    script = make_script()
    run(script, check=True)
    counter = tmp_path / "exman" / ".exman" / "counter"
    lines = counter.read_text().split("\n")
    counter.write_text(f"99999999999999999999999\n{lines[1]}\n")
    run(script, check=True)
    assert exman.Index(tmp_path / "exman").info().id.tolist() == [1, 2]


# -- item 17: clear errors, not tracebacks -------------------------------------------
def test_config_with_bytes_that_are_no_utf8_names_file_and_line(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_bytes(b"lr: 0.5\nmodel: \xff\xfe\n")
    proc = run(make_script(), "--config", str(config))
    assert proc.returncode == 2
    assert f"{config}, line 2: invalid YAML" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_config_with_a_control_character_names_file_and_line(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("lr: 0.5\n\nmodel: a\x1bb\n")
    proc = run(make_script(), "--config", str(config))
    assert proc.returncode == 2
    assert f"{config}, line 3: invalid YAML: control characters" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("where", ["file", "devnull", "runs-file", "lock-folder"])
def test_a_root_that_cannot_hold_runs_is_a_clear_error(
    make_script: Callable[..., Path],
    run: Callable[..., Any],
    tmp_path: Path,
    where: str,
) -> None:
    root = tmp_path / "exman"
    if where == "file":
        root.write_text("not a folder")
    elif where == "devnull":
        root = Path(os.devnull)
    else:
        root.mkdir()
        bad = root / ("runs" if where == "runs-file" else "lock")
        bad.write_text("") if where == "runs-file" else bad.mkdir()
    proc = run(make_script(), env={"EXMAN_ROOT": str(root)})
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    expected = {
        "file": f"cannot use {root} as an exman root: it is not a folder",
        "devnull": f"cannot use {root} as an exman root: it is not a folder",
        "runs-file": f"{root}/runs is not a folder",
        "lock-folder": f"cannot take the lock {root}/lock: Is a directory",
    }[where]
    assert expected in proc.stderr


def test_the_command_on_a_root_whose_runs_is_a_file(tmp_path: Path) -> None:
    root = tmp_path / "exman"
    exman.Root(root).ensure()
    (root / "fails").rmdir()
    (root / "fails").write_text("")
    code = main(["--root", str(root), "gc"])
    assert code == 2


def test_csv_and_json_on_a_terminal_carry_no_raw_escapes(
    make_script: Callable[..., Path], run: Callable[..., Any], tmp_path: Path
) -> None:
    import pty

    run(make_script(), "--model", "a\x1b[2Jb\x9bc", check=True)
    root = tmp_path / "exman"
    for args in (
        ["ls", "--format", "csv"],
        ["ls", "-f", "json"],
        ["show", "1", "-f", "json"],
    ):
        leader, follower = pty.openpty()
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "exman", "--root", str(root), *args],
                stdout=follower,
                stderr=subprocess.PIPE,
                timeout=60,
            )
            os.close(follower)
            out = b""
            while True:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the terminal closed
                    break
                if not chunk:
                    break
                out += chunk
        finally:
            os.close(leader)
        assert proc.returncode == 0, proc.stderr
        text = out.decode()
        assert "a" in text and "\x1b" not in text and "\x9b" not in text, args
