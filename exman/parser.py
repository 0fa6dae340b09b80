"""ExParser: an ``argparse.ArgumentParser`` that gives every run a folder."""

from __future__ import annotations

import argparse
import glob
import os
import pathlib
import sys
from collections.abc import Iterable, Sequence
from typing import Any, Callable, NamedTuple, NoReturn

import configargparse

from .record import heartbeat
from .record.config import (
    NEVER_RESTORED,
    SWEEP_PARAMS_ENV,
    ConfigFile,
    config_items,
    optional,
    str2bool,
    sweep_args,
)
from .record.metrics import set_current
from .record.params import PARAMS_FILE, dump_params
from .record.run import DIFF_FILE, SWEEP_ENV, Run, command_record, sweep_record
from .record.safe import SafeExperiment, track, untrack
from .record.store import (
    NO_VALUE,
    ROOT_ENV,
    ExmanError,
    Root,
    RunPlace,
    StrPath,
    atomic_write,
    check_name,
)
from .record.vcs import GitError, GitState, git_state

__all__ = [
    "ROOT_ENV",
    "SWEEP_PARAMS_ENV",
    "ArgumentError",
    "ExParser",
    "optional",
    "simpleroot",
    "str2bool",
]

#: raised by a failing validator (the same class as argparse's)
ArgumentError = argparse.ArgumentError

DEFAULT_FOLDER = "exman"
#: what exman itself puts in params.yaml and the namespace of every run
RESERVED_DESTS = frozenset({"root", "time", "id", "safe_experiment"})
#: a longer --name would not fit in a folder name (255 bytes) with id and time
MAX_NAME_BYTES = 200


def simpleroot(file: StrPath) -> pathlib.Path:
    """The folder ``exman`` next to ``file``.

    ``ExParser(root=exman.simpleroot(__file__))`` keeps the runs beside the script.
    """
    return pathlib.Path(os.path.dirname(os.path.abspath(file))) / DEFAULT_FOLDER


class _Validator(NamedTuple):
    call: Callable[[argparse.Namespace], Any]
    message: str


class ExParser(configargparse.ArgumentParser):
    """A drop-in ``argparse.ArgumentParser`` that records every run.

    Each :meth:`parse_args` creates ``root/runs/<id>-<time>[-<name>]/`` with
    ``params.yaml`` and ``run.json``, links it into ``root/index/`` (and
    ``root/marked/…`` for ``automark``), and returns the namespace with
    ``root`` (the run folder) and ``safe_experiment`` added.

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
        kwargs.setdefault("config_file_parser_class", ConfigFile(self))
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
        self.validators: list[_Validator] = []
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
        self.add_argument(
            "--tmp",
            action="store_true",
            help="put the run in root/tmp, not in the index",
        )
        self.add_argument(
            "--git-dirty",
            action="store_true",
            help="run even if the git work tree has uncommitted changes",
        )
        self.add_argument(
            "--name",
            help="a name for the run, added to its folder name",
        )

    # -- compatibility with exman 0.1.9, where the parser was its root ---------
    @property
    def root(self) -> pathlib.Path:
        return self.store.path

    @property
    def runs(self) -> pathlib.Path:
        return self.store.runs

    @property
    def index(self) -> pathlib.Path:
        return self.store.index

    @property
    def marked(self) -> pathlib.Path:
        return self.store.marked

    @property
    def fails(self) -> pathlib.Path:
        return self.store.fails

    # -- arguments ---------------------------------------------------------------
    def add_argument(
        self, *args: Any, volatile: bool = False, **kwargs: Any
    ) -> argparse.Action:
        """As ``argparse``; ``volatile=True`` keeps the value out of ``--config``.

        A volatile value is saved in params.yaml but never restored from it
        (a job id, a path that differs per machine), and a flag of a sweep's
        command that sets it does not count in the task keys.

        :raises ValueError: the argument's dest is one that exman sets for
            every run (root, time, id, safe_experiment).
        """
        action = super().add_argument(*args, **kwargs)
        if action.dest in RESERVED_DESTS:
            raise ValueError(
                f"the argument dest {action.dest!r} is exman's: every run sets "
                f"{action.dest!r} in its params.yaml and namespace; give the "
                f"argument another dest, e.g. dest='{action.dest}_'"
            )
        if volatile:
            self._volatile.add(action.dest)
        return action

    def get_possible_config_keys(self, action: argparse.Action) -> list[str]:
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

        A validator that returns a false value (other than None) or raises
        makes :meth:`parse_args` raise :class:`ArgumentError` with
        ``message.format(**params)``.
        """
        if not callable(validator):
            raise TypeError("validator should be callable")
        self.validators.append(_Validator(validator, message))

    def register_setter(self, setter: Callable[[argparse.Namespace], Any]) -> None:
        """Call ``setter(namespace)`` after parsing, before the validators."""
        self.setters.append(setter)

    def error(self, message: str) -> NoReturn:
        """Print the usage and ``message`` on stderr, and exit with code 2."""
        super().error(message)
        raise SystemExit(2)  # not reached: configargparse's error exits

    # -- --config ------------------------------------------------------------------
    def _is_default(self, name: str) -> bool:
        full = os.path.abspath(name)
        for entry in self._default_files:
            for path in glob.glob(os.path.expanduser(entry)):
                if os.path.abspath(path) == full:
                    return True
        return False

    def _config_items(self, data: dict[Any, Any], *, restoring: bool) -> dict[str, Any]:
        skip = NEVER_RESTORED | self._volatile if restoring else NEVER_RESTORED
        return config_items(self, data, skip=skip)

    # -- parsing -------------------------------------------------------------------
    def parse_args(
        self,
        args: Sequence[str] | None = None,
        namespace: argparse.Namespace | None = None,
        **kwargs: Any,
    ) -> argparse.Namespace:
        """Parse as argparse does, then create the run.

        :returns: the namespace, with ``root`` (the run folder, a Path) and
            ``safe_experiment`` (see :class:`exman.record.safe.SafeExperiment`).
        :raises ArgumentError: a validator refused the arguments.
        :raises GitError: ``git_assert_clean`` and the tree is dirty.
        """
        arglist = None if args is None else list(args)
        given = sys.argv[1:] if arglist is None else arglist
        ns = super().parse_args(sweep_args(self) + given, namespace, **kwargs)
        if ns.name:
            try:
                check_name(ns.name, "--name")
            except ExmanError as e:
                self.error(str(e))
            if len(os.fsencode(ns.name)) > MAX_NAME_BYTES:
                self.error(
                    f"--name is too long: {len(os.fsencode(ns.name))} bytes, "
                    f"at most {MAX_NAME_BYTES} fit in a folder name"
                )
        state = self._git_state(ns)
        for setter in self.setters:
            setter(ns)
        for validator in self.validators:
            _validate(validator, ns)
        mark = None
        if self.automark and not ns.tmp:
            try:  # before anything is created: a value may not fit a folder
                mark = self.store.automark_key(
                    (m, getattr(ns, m, NO_VALUE)) for m in self.automark
                )
            except ExmanError as e:
                self.error(str(e))
        try:
            return self._create_run(ns, state, arglist, mark)
        except ExmanError as e:
            self.error(str(e))
        except OSError as e:  # a read-only root, a full disk, no permission
            where = f" ({e.filename})" if e.filename else ""
            self.error(
                f"cannot create a run in {self.store.path}: {e.strerror or e}{where}"
            )

    def _git_state(self, ns: argparse.Namespace) -> GitState | None:
        if self.git is None:
            return None
        state = git_state(self.git)
        if self.git_assert_clean and state.dirty and not ns.git_dirty:
            raise GitError(
                f"the git work tree {self.git!r} has uncommitted changes: commit "
                "them, or pass --git-dirty to run anyway"
            )
        return state

    def _create_run(
        self,
        ns: argparse.Namespace,
        git: GitState | None,
        args: list[str] | None,
        mark: pathlib.Path | None,
    ) -> argparse.Namespace:
        every = heartbeat.interval()  # a bad EXMAN_HEARTBEAT stops us before the run
        store = self.store.ensure()
        place = store.allocate(tmp=ns.tmp, name=ns.name, zfill=self.zfill)
        try:
            return self._fill_run(store, place, ns, git, args, mark, every)
        except BaseException:
            # nothing half-made stays behind: no folder without params.yaml
            untrack(Run(place.path))
            store.abandon(place.name, place.path)
            raise

    def _fill_run(
        self,
        store: Root,
        place: RunPlace,
        ns: argparse.Namespace,
        git: GitState | None,
        args: list[str] | None,
        mark: pathlib.Path | None,
        every: float,
    ) -> argparse.Namespace:
        params = dict(vars(ns))
        params["root"] = place.relpath.as_posix()
        if git is not None:
            params["commit"] = git.commit
            params["dirty"] = git.dirty
        text = dump_params(params, time=place.time, id=place.id)
        atomic_write(place.path / PARAMS_FILE, text, durable=True)
        run = Run(place.path)
        record = {"command": command_record(args)}
        sweep = sweep_record()
        if sweep is not None:
            if self._volatile:  # so that the sweep leaves them out of its keys
                sweep["volatile"] = sorted(self._volatile)
            record["sweep"] = sweep
        # this process is the sweep's task; what it starts from now on is not
        for var in (*SWEEP_ENV.values(), SWEEP_PARAMS_ENV):
            os.environ.pop(var, None)
        run.start(heartbeat=every, **record)
        track(run)
        if git is not None and git.diff:
            atomic_write(place.path / DIFF_FILE, git.diff)
        links: list[pathlib.Path] = []
        if not ns.tmp:
            links.append(store.link_index(place.name))
            if mark is not None:
                links.append(store.link_mark(mark.as_posix(), place.name))
        if self.verbose:
            print(text, end="")
            for link in links:
                print("created link", link)
        set_current(place.path, params)
        ns.root = place.path
        ns.safe_experiment = SafeExperiment(store, run, links)
        if not hasattr(ns, "run"):  # unless the script has an argument "run"
            ns.run = run
        return ns


def _validate(validator: _Validator, ns: argparse.Namespace) -> None:
    try:
        ok = validator.call(ns)
    except argparse.ArgumentError:
        raise
    except Exception as e:
        raise argparse.ArgumentError(None, _format(validator.message, ns)) from e
    if ok is not None and not ok:
        raise argparse.ArgumentError(None, _format(validator.message, ns))


def _format(message: str, ns: argparse.Namespace) -> str:
    try:
        return message.format(**vars(ns))
    except (KeyError, IndexError, ValueError):
        return message
