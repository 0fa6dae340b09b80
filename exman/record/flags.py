"""exman's own flags on a script's parser, and flags that turn off.

exman adds ``--config``, ``--tmp``, ``--git-dirty``, ``--name`` and
``--resume-run`` to every script. A script that defines one of these flags
(or an argument with one of their dests) keeps it: exman's flag yields and
becomes ``--exman-<flag>`` with the dest ``exman_<dest>``, and its help says
so.

Every ``store_true`` flag ``--x`` also gets ``--no-x``, which turns it off
(and a flag spelled ``--no-x`` gets ``--x``), so that a run restored with
``--config`` or ``exman rerun`` that had the flag on can be re-run with it
off. A ``store_false`` flag gets a counterpart only when it is spelled
``--no-x``: ``--x`` then turns it back on. The counterpart is left out when
the script uses its name itself, and goes away when the script defines it
later.

argparse has no public way to rename or remove an option once added; the
parser's own tables (``_actions``, ``_option_string_actions``) are changed
here the way argparse's ``conflict_handler="resolve"`` changes them.
"""

from __future__ import annotations

import argparse
from collections.abc import Container, Iterable

from .config import NEVER_RESTORED

# not typing's: importing typing would slow every run's start
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

__all__ = ["PREFIX", "RESERVED_DESTS", "Flags", "is_exmans", "may_give"]

#: what exman's own flags and dests are renamed with when they yield
PREFIX = "exman"
#: what exman itself puts in params.yaml and the namespace of every run
RESERVED_DESTS = frozenset({"root", "time", "id", "safe_experiment"})
#: the keys exman writes in every params.yaml, never restored
_RUN_KEYS = frozenset({"root", "time", "id", "commit", "dirty"})
#: exman's flags besides --config: (key, flag, action, help)
_OWN = (
    ("tmp", "--tmp", "store_true", "put the run in root/tmp, not in the index"),
    (
        "git_dirty",
        "--git-dirty",
        "store_true",
        "run even if the git work tree has uncommitted changes",
    ),
    ("name", "--name", "store", "a name for the run, added to its folder name"),
)


def is_exmans(key: str, keys: Container[str]) -> bool:
    """Whether ``key`` of a params.yaml holds one of exman's own values.

    :param keys: all the keys of the run(s): ``name`` is the script's own
        when ``exman_name`` is there too (exman's flag yielded).
    """
    if key.startswith(f"{PREFIX}_"):
        return key[len(PREFIX) + 1 :] in NEVER_RESTORED
    return key in NEVER_RESTORED and f"{PREFIX}_{key}" not in keys


def may_give(words: Iterable[str], options: Iterable[str], prefix: str) -> bool:
    """Whether a word of a command line may give one of ``options``: the
    option itself, an abbreviation of it, either with ``=value``, or a
    short option with its value attached; the words after ``--`` are
    positional.

    :param prefix: the parser's ``prefix_chars``.
    """
    options = list(options)
    for word in words:
        if word == "--":
            return False
        if not word or word[0] not in prefix:
            continue
        key = word.split("=", 1)[0]
        if any(o.startswith(key) or word.startswith(o) for o in options):
            return True
    return False


class Flags:
    """The bookkeeping of one parser: exman's flags and the counterparts.

    :param parser: the parser the flags belong to.
    :param volatile: where the dests of ``volatile=True`` arguments go.
    """

    def __init__(self, parser: argparse.ArgumentParser, volatile: set[str]) -> None:
        self.parser = parser
        self.volatile = volatile
        #: exman's own flags by their first dest ("name", "config_file"...)
        self.own: dict[str, argparse.Action] = {}
        #: counterpart -> (the flag it turns off, the note added to its help)
        self.counterparts: dict[argparse.Action, tuple[argparse.Action, str]] = {}
        self.yielded: set[argparse.Action] = set()

    # -- exman's flags -------------------------------------------------------
    def add_own(self) -> None:
        """Add exman's flags to the parser (``--config`` is configargparse's)."""
        for action in self.parser._actions:
            if getattr(action, "is_config_file_arg", False):
                self.own["config"] = action
        add = argparse._ActionsContainer.add_argument
        for key, flag, kind, text in _OWN:
            self.own[key] = add(self.parser, flag, action=kind, help=text)
        # absent from the namespace (and params.yaml) unless given
        self.own["resume_run"] = add(
            self.parser,
            "--resume-run",
            type=int,
            default=argparse.SUPPRESS,
            metavar="ID",
            help="continue run ID (stopped: interrupted or crashed) in its own "
            "folder, with its own arguments, as its next attempt",
        )

    def dest(self, key: str) -> str:
        """The dest exman's flag ``key`` has now (``exman_name`` once it yielded)."""
        return self.own[key].dest

    def value(self, ns: argparse.Namespace, key: str) -> Any:
        """The value of exman's flag ``key`` in a parsed namespace."""
        return getattr(ns, self.own[key].dest, None)

    def dests(self) -> set[str]:
        """The dests of exman's flags as they are now."""
        return {a.dest for a in self.own.values()}

    def never_restored(self) -> set[str]:
        """The keys of params.yaml that a config file does not restore: the
        ones exman writes itself, unless the script took the name."""
        mine = {a.dest for a in self.parser._actions} - self.dests()
        return (set(NEVER_RESTORED) - mine) | self.dests() | _RUN_KEYS

    def option(self, key: str) -> str:
        """The long option of exman's flag ``key``: ``--config``, ``--exman-config``…"""
        return self.own[key].option_strings[-1]

    def _yield(self, action: argparse.Action, because: str) -> None:
        if action in self.yielded:
            raise ValueError(
                f"the script defines {because}, and exman's flag "
                f"{'/'.join(action.option_strings)} has yielded once already"
            )
        self.yielded.add(action)
        table = self.parser._option_string_actions
        renamed = []
        for opt in action.option_strings:
            if table.get(opt) is action:
                del table[opt]
            new = f"--{PREFIX}-{opt.lstrip(self.parser.prefix_chars)}"
            if new in table:
                raise ValueError(
                    f"the script defines {because} and {new}: exman's own "
                    f"{opt} has no name left to yield to"
                )
            table[new] = action
            renamed.append(new)
        old = action.option_strings
        action.option_strings = renamed
        if not action.dest.startswith(f"{PREFIX}_"):
            action.dest = f"{PREFIX}_{action.dest}"
        if action.help is not argparse.SUPPRESS:
            action.help = (
                f"{action.help or ''} (exman's {'/'.join(old)}, renamed: the "
                f"script has its own {because})"
            ).strip()

    # -- adding an argument -----------------------------------------------------
    def add(
        self,
        add: Callable[..., argparse.Action],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        volatile: bool = False,
    ) -> argparse.Action:
        """``add(*args, **kwargs)`` (the parser's or a group's ``add_argument``)
        with exman's rules: its flags yield, flags get counterparts.

        :raises ValueError: the argument's dest is one that exman sets for
            every run (root, time, id, safe_experiment).
        """
        self.make_room(args)
        action = add(*args, **kwargs)
        if action.dest in RESERVED_DESTS:
            getattr(action, "container", self.parser)._remove_action(action)
            for opt in action.option_strings:
                self.parser._option_string_actions.pop(opt, None)
            raise ValueError(
                f"the argument dest {action.dest!r} is exman's: every run sets "
                f"{action.dest!r} in its params.yaml and namespace; give the "
                f"argument another dest, e.g. dest='{action.dest}_'"
            )
        self.added(action)
        if volatile:
            self.volatile.add(action.dest)
        return action

    def route(self, group: Any) -> None:
        """Make an argument group's ``add_argument`` (and its mutually
        exclusive groups') follow the parser's rules, ``volatile`` included."""
        add = group.add_argument
        make = group.add_mutually_exclusive_group

        def add_argument(
            *args: Any, volatile: bool = False, **kwargs: Any
        ) -> argparse.Action:
            return self.add(add, args, kwargs, volatile=volatile)

        def add_mutually_exclusive_group(**kwargs: Any) -> Any:
            inner = make(**kwargs)
            self.route(inner)
            return inner

        group.add_argument = add_argument
        group.add_mutually_exclusive_group = add_mutually_exclusive_group

    def make_room(self, option_strings: Iterable[Any]) -> None:
        """Before the script adds ``option_strings``: exman's flags of those
        names yield and counterparts of those names go."""
        table = self.parser._option_string_actions
        for opt in option_strings:
            if not isinstance(opt, str):
                continue
            action = table.get(opt)
            if action is None:
                continue
            if action in self.own.values():
                self._yield(action, opt)
            elif action in self.counterparts:
                self._drop(action)

    def added(self, action: argparse.Action) -> None:
        """After the script added ``action``: exman's flag of the same dest
        yields; a flag that can be turned off gets its counterpart."""
        if action in self.own.values():
            return
        for own in list(self.own.values()):
            if own.dest == action.dest and own not in self.yielded:
                self._yield(own, f"argument {action.dest!r}")
        self._counterpart(action)

    def _counterpart(self, action: argparse.Action) -> None:
        if isinstance(action, argparse._StoreTrueAction):
            flip = True
        elif isinstance(action, argparse._StoreFalseAction):
            flip = False
        else:
            return
        table = self.parser._option_string_actions
        names = []
        for opt in action.option_strings:
            if not opt.startswith("--"):
                continue
            if opt.startswith("--no-"):
                other = "--" + opt[len("--no-") :]
            elif flip:
                other = "--no-" + opt[2:]
            else:  # store_false --x: "--no-x" would turn it *on*
                continue
            if other not in table and other not in names:
                names.append(other)
        if not names:
            return
        # the container's method, not the parser's: no counterpart of this one
        counterpart = argparse._ActionsContainer.add_argument(
            self.parser,
            *names,
            action="store_const",
            dest=action.dest,
            const=not action.const,
            default=argparse.SUPPRESS,
            help=argparse.SUPPRESS,
        )
        note = f"(undo with {' or '.join(names)})"
        if action.help is not argparse.SUPPRESS:
            action.help = f"{action.help} {note}" if action.help else note
        self.counterparts[counterpart] = (action, note)

    def _drop(self, counterpart: argparse.Action) -> None:
        flag, note = self.counterparts.pop(counterpart)
        parser = self.parser
        for opt in counterpart.option_strings:
            if parser._option_string_actions.get(opt) is counterpart:
                del parser._option_string_actions[opt]
        parser._remove_action(counterpart)
        for group in parser._action_groups:
            if counterpart in group._group_actions:
                group._group_actions.remove(counterpart)
        if isinstance(flag.help, str):
            flag.help = flag.help.replace(note, "").strip() or None

    def is_counterpart(self, action: argparse.Action) -> bool:
        """Whether ``action`` is a counterpart exman added (no config key)."""
        return action in self.counterparts
