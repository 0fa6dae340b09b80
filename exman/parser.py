"""ExParser: an ``argparse.ArgumentParser`` that gives every run a folder."""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
from collections.abc import Iterable, Sequence

import configargparse

from .record import environment
from .record.config import (
    SWEEP_PARAMS_ENV,
    ConfigFile,
    config_items,
    optional,
    str2bool,
    sweep_args,
)
from .record.create import check_run_name, create_run
from .record.current import set_current
from .record.fingerprint import PendingCode
from .record.flags import Flags, may_give
from .record.launch import Launch, detect_launch
from .record.params import PARAMS_FILE, TIME_FORMAT, register_str_converter
from .record.run import (
    DIFF_FILE,
    Run,
    command_record,
    leave_sweep,
    script_path,
    sweep_record,
)
from .record.safe import SafeExperiment, track, untrack
from .record.store import (
    NO_VALUE,
    ROOT_ENV,
    ExmanError,
    Root,
    StrPath,
)

# not typing's: importing typing would slow every run's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, NoReturn

    from .record.checks import Validator
    from .record.legacy import (
        DIR_FORMAT,
        DIR_PATTERN,
        EXT,
        FOLDER_DEFAULT,
        TIME_FORMAT_DIR,
        represent_as_str,
        yaml_file,
    )
    from .record.positionals import Positionals
    from .record.vcs import GitState

__all__ = [
    "DIFF_FILE",
    "DIR_FORMAT",
    "DIR_PATTERN",
    "EXT",
    "FOLDER_DEFAULT",
    "PARAMS_FILE",
    "ROOT_ENV",
    "SWEEP_PARAMS_ENV",
    "TIME_FORMAT",
    "TIME_FORMAT_DIR",
    "ArgumentError",
    "ExParser",
    "optional",
    "register_str_converter",
    "represent_as_str",
    "simpleroot",
    "str2bool",
    "yaml_file",
]

#: raised by a failing validator (the same class as argparse's)
ArgumentError = argparse.ArgumentError

#: exman 0.1.9's names that this module still exports, from
#: :mod:`exman.record.legacy`: imported when first asked for
_LEGACY = {
    "DEFAULT_FOLDER": "FOLDER_DEFAULT",
    "DIR_FORMAT": "DIR_FORMAT",
    "DIR_PATTERN": "DIR_PATTERN",
    "EXT": "EXT",
    "FOLDER_DEFAULT": "FOLDER_DEFAULT",
    "TIME_FORMAT_DIR": "TIME_FORMAT_DIR",
    "represent_as_str": "represent_as_str",
    "yaml_file": "yaml_file",
}


def __getattr__(name: str) -> Any:
    if name in _LEGACY:
        from .record import legacy

        return getattr(legacy, _LEGACY[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def simpleroot(file: StrPath) -> pathlib.Path:
    """The folder ``exman`` next to ``file``.

    ``ExParser(root=exman.simpleroot(__file__))`` keeps the runs beside the script.
    """
    from .record.legacy import FOLDER_DEFAULT

    return pathlib.Path(os.path.dirname(os.path.abspath(file))) / FOLDER_DEFAULT


class ExParser(configargparse.ArgumentParser):
    """A drop-in ``argparse.ArgumentParser`` that records every run.

    Each :meth:`parse_args` creates ``root/runs/<id>-<time>[-<name>]/`` with
    ``params.yaml`` and ``run.json``, links it into ``root/index/`` (and
    ``root/marked/…`` for ``automark``), and returns the namespace with
    ``root`` (the run folder) and ``safe_experiment`` added.

    exman adds ``--config``, ``--tmp``, ``--git-dirty``, ``--name`` and
    ``--resume-run``; a flag of the script with one of these names wins, and
    exman's becomes ``--exman-config``, ``--exman-name``… Every
    ``store_true`` flag ``--x`` gets ``--no-x`` to turn it off again.

    ``--resume-run ID`` continues run ID instead of making a new one: the
    same folder and id, its own arguments, the next attempt (see
    :attr:`Run.attempt <exman.Run.attempt>`). A sweep's launcher continues
    a requeued or timed-out task's run the same way.

    :param root: the exman root folder; the ``EXMAN_ROOT`` environment
        variable overrides it (launchers and clusters set it).
    :param zfill: digits of the zero-padded run id in folder names.
    :param automark: argument names; the run is also linked at
        ``marked/<a>/<value>/<b>/<value>/<run>``.
    :param default_config_files: YAML files with default values (as in
        configargparse); they override the defaults set in code.
    :param git: record the git commit of this repository (``True``: the
        script's folder); a dirty tree also saves ``changes.diff``.
    :param git_assert_clean: refuse to run from a dirty tree unless
        ``--git-dirty`` is given.
    :param verbose: print the params and links of each new run.
    :raises ValueError: no root is given and ``EXMAN_ROOT`` is not set.
    """

    def __init__(
        self,
        *args: Any,
        root: StrPath | None = None,
        zfill: int = 6,
        automark: Sequence[str] = (),
        default_config_files: Iterable[StrPath] = (),
        git: StrPath | bool | None = None,
        git_assert_clean: bool = False,
        verbose: bool = False,
        args_for_setting_config_path: Sequence[str] = ("--config",),
        **kwargs: Any,
    ) -> None:
        self._volatile: set[str] = set()
        self._default_files = [os.fspath(f) for f in default_config_files]
        self._flags = Flags(self, self._volatile)
        self._restoring: Positionals | None = None
        self._parsing = False
        kwargs.setdefault(
            "config_file_parser_class", ConfigFile(self, self._default_files)
        )
        kwargs.setdefault("ignore_unknown_config_file_keys", True)
        kwargs.setdefault(
            "config_arg_help_message",
            "restore the arguments of an earlier run from its params.yaml; "
            "arguments on the command line override them",
        )
        super().__init__(
            *args,
            default_config_files=self._default_files,
            args_for_setting_config_path=list(args_for_setting_config_path),
            **kwargs,
        )
        self.register("type", bool, str2bool)
        env_root = os.environ.get(ROOT_ENV)
        if env_root:
            root = env_root
        if root is None:
            raise ValueError(
                "no exman root: pass ExParser(root=exman.simpleroot(__file__)) "
                f"or set the {ROOT_ENV} environment variable"
            )
        self.store = Root(root)
        self.zfill = zfill
        self.automark = list(automark)
        self.verbose = verbose
        self.validators: list[Validator] = []
        self.setters: list[Callable[[argparse.Namespace], Any]] = []
        if git is True or (git in (None, False) and git_assert_clean):
            script = sys.argv[0] if sys.argv and sys.argv[0] else ""
            git = (
                os.path.dirname(os.path.abspath(script))
                if os.path.isfile(script)
                else "."
            )
        self.git: str | None = None if git in (None, False) else os.fspath(git)  # type: ignore[arg-type]
        self.git_assert_clean = git_assert_clean
        self._flags.add_own()

    # -- compatibility with exman 0.1.9, where the parser was its root ---------
    root = property(lambda self: self.store.path, doc="The root folder.")
    runs = property(lambda self: self.store.runs, doc="Its ``runs/`` folder.")
    index = property(lambda self: self.store.index, doc="Its ``index/`` folder.")
    marked = property(lambda self: self.store.marked, doc="Its ``marked/`` folder.")
    fails = property(lambda self: self.store.fails, doc="Its ``fails/`` folder.")
    tmp = property(lambda self: self.store.tmp, doc="Its ``tmp/`` folder.")
    lock = property(lambda self: self.store.lock(), doc="The root's lock.")

    def num_ex(self) -> int:
        """The number of run folders in ``runs/``."""
        from .record.legacy import num_ex

        return num_ex(self.store)

    def max_ex(self) -> int:
        """The highest run id handed out so far in this root (0 if none)."""
        from .record.legacy import max_ex

        return max_ex(self.store)

    def next_ex(self) -> int:
        """The id the next run will get, unless another process is faster."""
        return self.max_ex() + 1

    def next_ex_str(self) -> str:
        """:meth:`next_ex` zero-padded as in folder names."""
        return str(self.next_ex()).zfill(self.zfill)

    # -- arguments ---------------------------------------------------------------
    def add_argument(
        self, *args: Any, volatile: bool = False, **kwargs: Any
    ) -> argparse.Action:
        """As ``argparse``; ``volatile=True`` keeps the value out of ``--config``.

        A volatile value is saved in params.yaml but never restored from it
        (a job id, a path that differs per machine), and a flag of a sweep's
        command that sets it does not count in the task keys. An argument
        named like one of exman's flags (``--name``, ``--config``…) takes the
        name: exman's flag becomes ``--exman-name``…

        :raises ValueError: the argument's dest is one that exman sets for
            every run (root, time, id, safe_experiment).
        """
        return self._flags.add(super().add_argument, args, kwargs, volatile=volatile)

    def add_argument_group(self, *args: Any, **kwargs: Any) -> Any:
        """As ``argparse``; its ``add_argument`` follows the same rules."""
        group = super().add_argument_group(*args, **kwargs)
        self._flags.route(group)
        return group

    def add_mutually_exclusive_group(self, **kwargs: Any) -> Any:
        """As ``argparse``; its ``add_argument`` follows the same rules."""
        group = super().add_mutually_exclusive_group(**kwargs)
        self._flags.route(group)
        return group

    def _open_config_files(self, command_line_args: list[str]) -> list[Any]:
        # configargparse looks for --config with a parser of its own, about
        # 0.4 ms of every run's start: not when no word can give it
        options = [
            option
            for action in self._actions
            if getattr(action, "is_config_file_arg", False)
            for option in action.option_strings
        ]
        if self._default_files or may_give(
            command_line_args, options, self.prefix_chars
        ):
            return list(super()._open_config_files(command_line_args))
        return []

    def get_possible_config_keys(self, action: argparse.Action) -> list[str]:
        if self._flags.is_counterpart(action):
            return []  # --no-x restores nothing: the key is its flag's
        keys = list(super().get_possible_config_keys(action))
        # params.yaml is keyed by dest, also for short-only options like -v
        if (
            action.option_strings
            and action.dest not in keys
            and action.dest != argparse.SUPPRESS
        ):
            keys.append(action.dest)
        return keys

    def register_validator(
        self,
        validator: Callable[[argparse.Namespace], Any],
        message: str = "validation error",
    ) -> None:
        """Check the parsed arguments together before a run is created.

        A validator passes by returning ``True`` or ``None``; any other
        value (False, 0, a message string…) or an exception makes
        :meth:`parse_args` raise :class:`ArgumentError` with
        ``message.format(**params)``.
        """
        if not callable(validator):
            raise TypeError("validator should be callable")
        from .record.checks import Validator

        self.validators.append(Validator(validator, message))

    def register_setter(self, setter: Callable[[argparse.Namespace], Any]) -> None:
        """Call ``setter(namespace)`` after parsing, before the validators."""
        self.setters.append(setter)

    def error(self, message: str) -> NoReturn:
        """Print the usage and ``message`` on stderr, and exit with code 2."""
        super().error(message)
        raise SystemExit(2)  # not reached: configargparse's error exits

    def set_additional_params(self, params: argparse.Namespace) -> None:
        """Run the setters on ``params`` (as :meth:`parse_args` does)."""
        for setter in self.setters:
            setter(params)

    def validate_params(self, params: argparse.Namespace) -> None:
        """Run the validators on ``params`` (as :meth:`parse_args` does).

        :raises ArgumentError: a validator refused them.
        """
        if not self.validators:
            return
        from .record.checks import validate

        for validator in self.validators:
            validate(validator, params)

    # -- --config ------------------------------------------------------------------
    def _never_restored(self, *, restoring: bool) -> set[str]:
        """Keys a file does not restore: exman's own (those the script did not
        take for itself) and, from ``--config``, the volatile arguments."""
        skip = self._flags.never_restored()
        return skip | self._volatile if restoring else skip

    def _config_items(
        self, data: dict[Any, Any], *, restoring: bool, source: str = "a config file"
    ) -> dict[str, Any]:
        items = config_items(self, data, skip=self._never_restored(restoring=restoring))
        if self._restoring is not None:
            self._restoring.take(items, source)
        return items

    # -- parsing -------------------------------------------------------------------
    def parse_args(
        self,
        args: Sequence[str] | str | None = None,
        namespace: argparse.Namespace | None = None,
        **kwargs: Any,
    ) -> argparse.Namespace:
        """Parse as argparse does, then create the run.

        :param args: the arguments (default ``sys.argv[1:]``); one string
            is split as a shell would split it.
        :returns: the namespace, with ``root`` (the run folder, a Path) and
            ``safe_experiment`` (see :class:`exman.record.safe.SafeExperiment`).
        :raises ArgumentError: a validator refused the arguments.
        :raises GitError: ``git_assert_clean`` and the tree is dirty.
        """
        return self._parse(args, namespace, kwargs, known=False)[0]

    def parse_known_args(
        self,
        args: Sequence[str] | str | None = None,
        namespace: argparse.Namespace | None = None,
        **kwargs: Any,
    ) -> tuple[argparse.Namespace, list[str]]:
        """As :meth:`parse_args`, and the arguments it does not know.

        The run is created as by :meth:`parse_args`; the unknown arguments
        are recorded in its run.json (``unknown_args``).
        """
        if self._parsing:  # argparse's own helpers call back in: no second run
            return super().parse_known_args(args, namespace, **kwargs)
        return self._parse(args, namespace, kwargs, known=True)

    def _parse(
        self,
        args: Sequence[str] | str | None,
        namespace: argparse.Namespace | None,
        kwargs: dict[str, Any],
        *,
        known: bool,
    ) -> tuple[argparse.Namespace, list[str]]:
        if isinstance(args, str):
            import shlex

            args = shlex.split(args)
        arglist = None if args is None else list(args)
        given = sys.argv[1:] if arglist is None else arglist
        resume, restore = self._resume_request(given)
        # a script in a git work tree: its git commands run during the parse
        self._code = PendingCode(
            script_path(), find_git=self.git is None and resume is None
        )
        try:
            return self._parse_and_create(
                given, arglist, restore, resume, namespace, kwargs, known=known
            )
        finally:
            self._code.discard()  # unless the run took it

    def _parse_and_create(
        self,
        given: list[str],
        arglist: list[str] | None,
        restore: list[str],
        resume: Run | None,
        namespace: argparse.Namespace | None,
        kwargs: dict[str, Any],
        *,
        known: bool,
    ) -> tuple[argparse.Namespace, list[str]]:
        restoring = self._restoring = None
        if any(not action.option_strings for action in self._actions):
            # only positionals are restored apart: not on every run's path
            from .record.positionals import Positionals

            restoring = self._restoring = Positionals(self)
        self._parsing = True
        try:
            extra_args = sweep_args(self, skip=self._never_restored(restoring=False))
            first = namespace
            if namespace is not None:  # kept for a second parse
                import copy

                first = copy.copy(namespace)
            ns, unknown = super().parse_known_args(
                extra_args + restore + given, first, **kwargs
            )
            if restoring is not None and restoring.all_given(ns):
                # every positional is on the command line: made optional they
                # may split its values otherwise than argparse, so parse again
                restoring.reset()
                self._restoring = None
                ns, unknown = super().parse_known_args(
                    extra_args + restore + given, namespace, **kwargs
                )
            else:
                if restoring is not None:
                    restoring.finish(ns)
                if namespace is not None:
                    vars(namespace).update(vars(ns))
                    ns = namespace
        finally:
            if restoring is not None:
                restoring.reset()
            self._restoring = None
            self._parsing = False
        if unknown and not known:
            message = f"unrecognized arguments: {' '.join(unknown)}"
            if not self.exit_on_error:
                raise ArgumentError(None, message)
            self.error(message)
        if hasattr(ns, self._flags.dest("resume_run")):
            delattr(ns, self._flags.dest("resume_run"))
        if resume is not None:
            self._check_same_args(ns, resume)
        name = self._flags.value(ns, "name")
        if name:
            try:
                check_run_name(name, self._flags.option("name"))
            except ExmanError as e:
                self.error(str(e))
        state = self._git_state(ns)
        self.set_additional_params(ns)
        self.validate_params(ns)
        try:
            return self._create_run(ns, state, arglist, unknown, resume), unknown
        except ExmanError as e:
            self.error(str(e))
        except OSError as e:  # a read-only root, a full disk, no permission
            where = f" ({e.filename})" if e.filename else ""
            self.error(
                f"cannot create a run in {self.store.path}: {e.strerror or e}{where}"
            )

    # -- continuing a run ------------------------------------------------------
    def _resume_request(self, given: Sequence[str]) -> tuple[Run | None, list[str]]:
        """The run ``--resume-run ID`` continues, and the arguments that
        restore its parameters (its params.yaml as the config file)."""
        option = self._flags.option("resume_run")
        config = self._flags.option("config")
        value: str | None = None
        has_config = False
        for i, word in enumerate(given):
            if word == "--":
                break
            if word == option and i + 1 < len(given):
                value = given[i + 1]
            elif word.startswith(option + "="):
                value = word[len(option) + 1 :]
            elif word == config or word.startswith(config + "="):
                has_config = True
        if value is None:
            return None, []
        try:
            num = int(value)
        except ValueError:
            return None, []  # argparse says what is wrong with it
        if has_config:
            self.error(
                f"{option} restores the arguments of run {num}: "
                f"{config} cannot be given with it"
            )
        from .record.resume import check_by_hand

        script = command_record(None)["script"]
        try:
            run = check_by_hand(self.store, num, script)
        except ExmanError as e:
            self.error(str(e))
        return run, [config, str(run.params_file)]

    def _check_same_args(self, ns: argparse.Namespace, run: Run) -> None:
        """A run continues with the arguments it has: none may differ."""
        saved = run.params
        skip = self._never_restored(restoring=True)
        changed = []
        for key, value in saved.items():
            if key in skip or not hasattr(ns, key):
                continue
            now = getattr(ns, key)
            if not _same(now, value):
                changed.append(f"{key}={now!r} (run {run.id} has {value!r})")
        if changed:
            self.error(
                f"{self._flags.option('resume_run')} {run.id} continues the run "
                "with its own arguments; these differ: " + ", ".join(changed)
            )

    def _git_state(self, ns: argparse.Namespace) -> GitState | None:
        if self.git is None:
            return None
        from .record.vcs import GitError, git_state

        state = git_state(self.git)
        dirty_ok = self._flags.value(ns, "git_dirty")
        if self.git_assert_clean and state.dirty and not dirty_ok:
            raise GitError(
                f"the git work tree {self.git!r} has uncommitted changes: commit "
                f"them, or pass {self._flags.option('git_dirty')} to run anyway"
            )
        return state

    def _create_run(
        self,
        ns: argparse.Namespace,
        git: GitState | None,
        args: list[str] | None,
        unknown: list[str],
        resume: Run | None = None,
    ) -> argparse.Namespace:
        command = command_record(args)
        if "config" in self._flags.own:
            command["config_flag"] = self._flags.option("config")
        record: dict[str, Any] = {"command": command}
        if unknown:
            record["unknown_args"] = list(unknown)
        automark = None
        if self.automark:
            automark = [(m, getattr(ns, m, NO_VALUE)) for m in self.automark]
        params = dict(vars(ns))
        sweep = sweep_record()
        if sweep is not None:
            if self._volatile:  # so that the sweep leaves them out of its keys
                sweep["volatile"] = sorted(self._volatile)
            record["sweep"] = sweep
        job = None
        if sweep is not None:
            # a sweep's task: it may continue its run (not on every run's path)
            from .record import resume as resuming

            job = resuming.launcher_attempt()
        # this process is the sweep's task; what it starts from now on is not
        leave_sweep((SWEEP_PARAMS_ENV,))
        launch = detect_launch()
        if launch is not None:
            if launch.rank > 0:
                return self._join_run(ns, launch)
            record["launch"] = launch.record()
        if sweep is not None and job is not None:
            resuming.check_task_key(sweep["key"])  # before anything is made
        by_hand = resume is not None
        if resume is None and sweep is not None and job is not None and job[1] > 1:
            # a launcher started the task again: its first attempt's run goes on
            resume = resuming.task_run(self.store, sweep["key"], job[0])
        if resume is not None:
            return self._continue_run(ns, resume, launch, by_hand=by_hand)
        record["env"] = environment.at_start()
        made = create_run(
            self.store,
            params,
            tmp=bool(self._flags.value(ns, "tmp")),
            name=self._flags.value(ns, "name"),
            zfill=self.zfill,
            git=git,
            record=record,
            automark=automark,
            started=track,
            abandoned=untrack,
            # the git commands of the fingerprint run on while the folder is made
            code=lambda: self._code.result(git),
        )
        if sweep is not None and job is not None:
            resuming.remember(self.store, sweep["key"], job[0], made.run)
        if launch is not None:
            from .record.ranks import publish_launch

            publish_launch(self.store, launch, made.place.relpath)
        if self.verbose:
            print(made.text, end="")
            for link in made.links:
                print("created link", link)
        set_current(made.place.path)
        ns.root = made.place.path
        ns.safe_experiment = SafeExperiment(self.store, made.run, made.links)
        if not hasattr(ns, "run"):  # unless the script has an argument "run"
            ns.run = made.run
        return ns

    def _continue_run(
        self,
        ns: argparse.Namespace,
        run: Run,
        launch: Launch | None,
        *,
        by_hand: bool,
    ) -> argparse.Namespace:
        """The next attempt of ``run``, in this process."""
        from .record import heartbeat
        from .record.resume import check_by_hand

        every = heartbeat.interval()
        if by_hand:
            # two --resume-run of one run at once: the second finds it running
            with self.store.lock():
                check_by_hand(self.store, run.id, command_record(None)["script"])
                run.resume(heartbeat=every)
        else:
            run.resume(heartbeat=every)
        track(run)
        if launch is not None:
            from .record.ranks import publish_launch

            publish_launch(self.store, launch, run.path.relative_to(self.store.path))
        if self.verbose:
            print(f"resuming run {run.id} (attempt {run.attempt}): {run.path}")
        set_current(run.path, resumed=True)
        ns.root = run.path
        link = self.store.index_link(run.name)
        links = [link] if os.path.lexists(link) else []
        ns.safe_experiment = SafeExperiment(self.store, run, links)
        if not hasattr(ns, "run"):
            ns.run = run
        return ns

    def _join_run(self, ns: argparse.Namespace, launch: Launch) -> argparse.Namespace:
        """A rank other than 0 of a distributed launch: rank 0's run."""
        from .record.ranks import join_launch

        folder = join_launch(self.store, launch)
        run = Run(folder)
        set_current(folder)
        ns.root = folder
        ns.safe_experiment = SafeExperiment(self.store, run, rank=launch.rank)
        if not hasattr(ns, "run"):
            ns.run = run
        return ns


def _same(now: object, saved: object) -> bool:
    """Whether a parsed value is the one a params.yaml holds (lists for
    tuples, text for paths and the script's own types)."""
    if now == saved:
        return True
    if isinstance(now, (list, tuple)) and isinstance(saved, (list, tuple)):
        return len(now) == len(saved) and all(map(_same, now, saved))
    return str(now) == str(saved)
