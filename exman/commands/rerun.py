"""Running a recorded run again: ``exman rerun ID [-- more args]``.

The command is rebuilt from the ``command`` record in ``run.json``: the same
interpreter, interpreter options and script, run from the same folder, with
``--config <run>/params.yaml`` and the extra arguments, which override the
restored values. The new run goes to the same root (``EXMAN_ROOT``).
"""

from __future__ import annotations

import os
import pathlib
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..record.params import PARAMS_FILE
from ..record.run import Run
from ..record.store import ExmanError, Root, RunNotFound, StrPath, run_id
from .selection import ROOT_ENV, find_root, select

__all__ = ["Rerun", "rerun"]

#: the environment a sweep gives its tasks; a re-run is not one of them
SWEEP_ENV_PREFIX = "EXMAN_SWEEP"


@dataclass
class Rerun:
    """A re-run of run ``id``: the command, where and how it runs.

    ``returncode`` and ``new_runs`` are set once :meth:`run` has run it.
    """

    id: int
    root: Root
    argv: list[str]
    cwd: pathlib.Path
    warnings: list[str] = field(default_factory=list)
    returncode: int | None = None
    #: ids of the runs the command created
    new_runs: list[int] = field(default_factory=list)

    def environ(self) -> dict[str, str]:
        """The environment of the command: ours, with the root, without a sweep."""
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(SWEEP_ENV_PREFIX)
        }
        env[ROOT_ENV] = str(self.root.path)
        return env

    def shell(self) -> str:
        """The command as one line to paste into a POSIX shell."""
        return (
            f"cd {shlex.quote(str(self.cwd))} && "
            f"{ROOT_ENV}={shlex.quote(str(self.root.path))} {shlex.join(self.argv)}"
        )

    def run(self, **kwargs: Any) -> int:
        """Run the command, wait for it, and note the runs it created.

        :param kwargs: passed to :func:`subprocess.Popen` (``stdout=``…).
        :returns: its exit code.
        """
        before = {run_id(p.name) for p in self.root.iter_runs()}
        with subprocess.Popen(
            self.argv, cwd=self.cwd, env=self.environ(), **kwargs
        ) as proc:
            try:
                proc.wait()
            except KeyboardInterrupt:
                # the child got the Ctrl-C too: let it finish its cleanup
                proc.wait()
                raise
        self.returncode = proc.returncode
        for path in self.root.iter_runs():
            num = run_id(path.name)
            if num not in before and Run(path).record().get("pid") == proc.pid:
                self.new_runs.append(num)  # type: ignore[arg-type]
        self.new_runs.sort()
        return proc.returncode


def _launcher(num: int, command: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The interpreter, its options and the script (or ``-m module``)."""
    executable = command.get("executable")
    orig = [str(a) for a in command.get("orig_argv") or []]
    argv = [str(a) for a in command.get("argv") or []]
    script = command.get("script")
    if not executable:
        raise ExmanError(f"run {num}: run.json does not say which Python ran it")
    # orig_argv = [python, *options, script or -m module or -c code, *args]
    cut = len(orig) - len(argv) + 1 if orig and argv else 0
    prefix = orig[1:cut] if cut > 1 else []
    if script:
        if not os.path.isfile(script):
            raise ExmanError(f"run {num}: its script {script} does not exist any more")
        prefix = [*prefix[:-1], str(script)] if prefix else [str(script)]
    elif not prefix:
        raise ExmanError(
            f"run {num} was not started from a script (argv {argv!r}): "
            "there is no command to run again"
        )
    warnings = []
    args = command.get("args")
    if isinstance(args, list) and [str(a) for a in args] != argv[1:]:
        warnings.append(
            f"run {num} parsed arguments given in its code, not its command "
            "line: the re-run gets --config only if the script reads sys.argv"
        )
    return [str(executable), *prefix], warnings


def rerun(
    root: StrPath | Root,
    id: int | str,
    extra: Sequence[str] = (),
    *,
    dry_run: bool = False,
) -> Rerun:
    """Run the command of run ``id`` again with its ``--config`` and ``extra``.

    :param extra: more arguments for the script; they override the
        restored ones (``["--lr", "0.5"]``).
    :param dry_run: only build the command (see :meth:`Rerun.shell`).
    :returns: the :class:`Rerun`, with ``returncode`` and ``new_runs`` set
        unless ``dry_run``.
    :raises RunNotFound: no run has this id.
    :raises ExmanError: the run has no command record (made by exman
        0.1.9), or its script or folder are gone.
    """
    root = root if isinstance(root, Root) else find_root(root)
    sel = select(root, [id])
    if sel.missing:
        raise RunNotFound(f"run {sel.missing[0]} not found in {root.path}")
    num, path = next(iter(sel.found.items()))
    command = Run(path).record().get("command")
    if not isinstance(command, dict):
        raise ExmanError(
            f"run {num} has no recorded command (no run.json: it was made by "
            f"exman 0.1.9): run your script by hand with --config "
            f"{path / PARAMS_FILE}"
        )
    launcher, warnings = _launcher(num, command)
    cwd = pathlib.Path(str(command.get("cwd") or "."))
    if not cwd.is_dir():
        raise ExmanError(f"run {num} ran in {cwd}, which does not exist any more")
    # a script with its own --config renamed exman's: the run says to what
    flag = str(command.get("config_flag") or "")
    if not flag.startswith("--"):
        flag = "--config"
    argv = [*launcher, flag, str(path / PARAMS_FILE), *extra]
    plan = Rerun(num, root, argv, cwd, warnings)
    if not dry_run:
        plan.run()
    return plan
