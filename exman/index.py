"""Index: every run of a root as a typed pandas DataFrame.

.. code-block:: python

    import exman
    index = exman.Index(exman.simpleroot("/path/to/main.py"))
    df = index.info()                   # the runs in index/
    best = index.info("best/lr")        # the runs marked under marked/best/lr
    everything = index.info(failed=True, tmp=True)
    one = index.row(42)                 # run 42 as a Series, wherever it is
    curves = index.metrics("loss")      # id, step, time, loss: every record
    table = index.aggregate(over="seed")  # count, loss_mean, loss_std per config
    paper = index.table(rows="model", cols="dataset", value="loss", over="seed")
    fig = index.plot("loss ~ lr", by="model", over="seed")   # needs matplotlib
    base = index.query("'baseline' in tags and lr > 0.01")  # as exman ls -q
    d = index.diff(3, 5)                # d.params, d.results, d.run, d.code…

Signature: ``Index(root, *, cache=True)``; ``Index.info(source=None, *,
failed=False, tmp=False) -> DataFrame``; ``Index.row(id) -> Series``;
``Index.metrics(names=None, *, source=None, failed=False, tmp=False)``
(every logged record, long format) and ``Index.aggregate(over="seed", *,
results=None, source=None, status="completed")`` (mean and std of the
results over repetitions): see :mod:`exman.look.analysis`;
``Index.query(expr, source=None, *, failed=False, tmp=False)`` (see
:mod:`exman.look.query`); ``Index.diff(first, *others, code=True) ->
RunDiff`` (see :mod:`exman.look.compare`).

Rows: one per run, sorted by ``id``. ``info()`` takes the runs linked in
``index/``; ``info("a/b")`` the runs linked anywhere below ``marked/a/b``
(marks made by ``automark`` or by ``exman mark``, wherever the run is now:
the marks of a run that failed follow it to ``fails/``), and raises
:class:`MarkNotFound` (a ``KeyError``) when ``marked/a/b`` does not exist
(an empty folder there gives no rows).
``failed=True`` adds the runs in ``fails/``, ``tmp=True`` those in ``tmp/``
(their ``root`` tells where each run is). A run that cannot be read (a
dangling link, no or invalid ``params.yaml``, an unsafe YAML tag, a
non-UTF-8 byte, aliases that expand out of proportion to the file, a run
entry that is a symbolic link) is left out with one
:class:`SkippedRunWarning` naming it; a run deleted while it is read is
left out silently.

Columns: ``id`` first, then every parameter, in the order of ``params.yaml``
(keys that appear only in later runs come after), then the outcome of the
runs, then ``status``, ``started``, ``finished``, ``duration``, ``host`` and
``error``. A run column whose name a parameter already uses is called
``run_<name>``. The outcome: one column per value of the runs'
``results.json`` (see :func:`exman.result`) and, for each metric logged
with :func:`exman.log` that has no result of the same name, its last
value (found in the last few KiB of ``metrics.jsonl``: see
:mod:`exman.look.outcome`), typed like the parameters, in the order first met.
An outcome name that a parameter or a run column already uses (a metric
``lr`` logged by a run with a parameter ``lr``) is called ``result_<name>``.

Types. The values of ``params.yaml`` are typed by YAML already (int, float,
bool, str, list, dict, None); each column is built from those Python values
by pandas, and nothing is guessed from strings:

* ints -> int64; ints and floats -> float64; ints or floats with missing
  values -> float64 with NaN; bools -> bool (object, with None, when some
  runs lack the value); strings -> pandas' string dtype (NaN where
  missing); lists stay lists and dicts stay dicts (object); a key that is
  null in every run is kept as a column of None; a run without a key that
  others have (a parameter added later) gets None/NaN there.
* ``id`` -> int64; ``time`` (``%Y-%m-%dT%H:%M:%S``, local time, as written
  in params.yaml) -> naive ``datetime64[ns]``; ``root`` -> the absolute
  ``pathlib.Path`` of the run folder, where it is now (``fails/...`` for a
  failed run).
* ``status`` -> completed, failed, interrupted, pruned (stopped early by
  the pruner of an ``exman sweep`` search), running, crashed (the
  record says running but its heartbeat stopped, or its process is gone
  from this host: see :mod:`exman.record.heartbeat`) or unknown
  (no run.json: a run made by exman 0.1.9). It is worked out at every call,
  never cached. ``started``/``finished`` -> datetime64 in UTC
  (tz-aware: runs may come from hosts in different time zones; use
  ``.dt.tz_convert(...)`` for local times). ``duration`` -> float64 seconds.
  ``host`` -> the machine that ran it. ``error`` -> the last line of
  ``traceback.txt`` (or the recorded reason, like ``exit code 3``) for a
  failed or interrupted run, else missing. When some run was resumed
  (see ``--resume-run`` and :attr:`exman.Run.attempt`): ``attempts``
  (int64, the attempts it made; 1 for the others). When some run was made by
  ``exman sweep``: ``sweep`` (its name), ``task`` (the task number) and
  ``task_key`` (the task's key), missing for the other runs. When some run
  recorded its environment and code (every run made since exman 0.2):
  ``python`` (its version), ``platform``, ``slurm_job`` (the SLURM job id,
  missing outside SLURM), ``code`` (the fingerprint of its code) and
  ``code_source`` (the work tree or script it fingerprints); with
  ``info(stale=True)``, ``stale``. The whole environment is the ``env``
  of the run's ``run.json`` (``exman show ID`` prints it).
  ``task_key`` (the task's key), missing for the other runs. When some
  run has a tag or a note (``exman tag``, ``exman note``): ``tags`` (a
  list in every row, ``[]`` for none) and ``note`` (a string, NaN for none).

Speed: the parsed runs are cached under ``.exman/cache/`` (see
:mod:`exman.look.cache`); a load on an unchanged root reads one file and stats
each run folder. ``Index(root, cache=False)`` reads every run again.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from .look.analysis import as_names, metrics_frame
from .look.cache import SkippedRunWarning
from .look.frame import Columns, build_frame, prepare
from .look.gather import Load, MarkNotFound
from .look.outcome import DamagedMetricsWarning
from .record.legacy import max_ex, num_ex
from .record.store import ExmanError, Root, RunNotFound, StrPath

# not typing's: importing typing would slow a load's start (its rows are read
# before pandas, which imports typing, is)
TYPE_CHECKING = False
if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .look.compare import RunDiff

__all__ = ["DamagedMetricsWarning", "Index", "MarkNotFound", "SkippedRunWarning"]


class Index:
    """The runs of an exman root, as pandas DataFrames.

    :param root: the root folder (the one holding ``runs/`` and ``index/``).
    :param cache: keep what was read under ``.exman/cache/`` and reuse it
        while the run folders do not change; False reads every run again and
        leaves the cache alone.
    :raises ExmanError: ``root`` is not an exman root, or one of its
        folders is a symbolic link (exman never follows one out of the root).
    """

    def __init__(self, root: StrPath, *, cache: bool = True) -> None:
        self.root = Root(root)
        self.cache = cache
        if not self.root.exists():
            raise ExmanError(
                f"{self.root.path} is not an exman root: it has no runs/ and "
                "index/ folders. Pass the folder given to ExParser(root=...)"
            )
        self.root.check_layout()

    def __repr__(self) -> str:
        return f"Index({str(self.root.path)!r})"

    # -- exman 0.1.9's names: its Index was the root's folders, as the parser --
    runs = property(lambda self: self.root.runs, doc="The ``runs/`` folder.")
    index = property(lambda self: self.root.index, doc="The ``index/`` folder.")
    marked = property(lambda self: self.root.marked, doc="The ``marked/`` folder.")
    fails = property(lambda self: self.root.fails, doc="The ``fails/`` folder.")
    tmp = property(lambda self: self.root.tmp, doc="The ``tmp/`` folder.")
    lock = property(lambda self: self.root.lock(), doc="The root's lock.")

    def num_ex(self) -> int:
        """The number of run folders in ``runs/``."""
        return num_ex(self.root)

    def max_ex(self) -> int:
        """The highest run id handed out so far in this root (0 if none)."""
        return max_ex(self.root)

    def next_ex(self) -> int:
        """The id the next run will get, unless another process is faster."""
        return self.max_ex() + 1

    # -- the public calls -------------------------------------------------------
    def info(
        self,
        source: StrPath | None = None,
        *,
        failed: bool = False,
        tmp: bool = False,
        njobs: int | None = None,
        stale: bool = False,
    ) -> pd.DataFrame:
        """The runs as a DataFrame: one row per run, sorted by id.

        :param source: None for the runs in ``index/``; a mark key such as
            ``"best"`` or ``"lr/0.1"`` for the runs marked under it, at any
            depth below.
        :param failed: also the runs in ``fails/``.
        :param tmp: also the runs in ``tmp/`` (made with ``--tmp``).
        :param njobs: ignored (kept for code written for exman 0.1.9).
        :param stale: add a ``stale`` column: True where the run's code
            (``code``) differs from the code in its work tree or script now,
            False where it is the same, None where unknown (no record, a
            source that is gone). Each source is looked at once.
        :raises MarkNotFound: (a ``KeyError``) no mark ``source``.
        :raises ExmanError: ``source`` is an absolute path or has ``..``.
        """
        if njobs is not None:
            warnings.warn(
                "Index.info(njobs=...) is ignored: loading is fast without it",
                DeprecationWarning,
                stacklevel=2,
            )
        return self._load(source, failed=failed, tmp=tmp, stale=stale)[0]

    def metrics(
        self,
        names: str | Sequence[str] | None = None,
        *,
        source: StrPath | None = None,
        failed: bool = False,
        tmp: bool = False,
    ) -> pd.DataFrame:
        """Every record the runs logged with :func:`exman.log`, one row each.

        A long DataFrame: ``id``, ``step``, ``time`` (datetime64, UTC), then
        one column per metric, in the order first logged; the runs in id
        order, the records of each in the order of its ``metrics.jsonl``.
        A line cut short by a crash is left out; lines that are no JSON
        object are skipped with a :class:`DamagedMetricsWarning`.

        :param names: the metric(s) to keep; records with none of them are
            left out. None: every metric.
        :param source: the runs, as in :meth:`info`.
        :param failed: also the runs in ``fails/``.
        :param tmp: also the runs in ``tmp/``.
        :raises ExmanError: a name in ``names`` was logged by none of the runs.
        :raises MarkNotFound: no mark ``source``.
        """
        frame = self.info(source, failed=failed, tmp=tmp)
        runs = list(zip(frame["id"].tolist(), frame["root"].tolist()))
        del frame
        return metrics_frame(runs, names)

    def aggregate(
        self,
        over: str | Sequence[str] = "seed",
        *,
        results: str | Sequence[str] | None = None,
        source: StrPath | None = None,
        status: str | Sequence[str] | None = "completed",
    ) -> pd.DataFrame:
        """Results over repetitions: runs grouped by every parameter but ``over``.

        One row per group, in the order of the group's first run: the
        group's parameters, ``count`` (its runs), and ``<result>_mean`` and
        ``<result>_std`` (the sample standard deviation, NaN for one run) of
        each result; missing values are skipped. exman's own parameters
        (``name``, ``tmp``, ``config_file``, ``commit``…; ``exman_name``…
        where the script has its own ``--name``) group nothing; a
        list or dict parameter groups by its value; runs without a
        parameter form their own group.

        :param over: the parameter(s) that differ between the repetitions.
        :param results: the outcome column(s) to aggregate: results, or the
            last value of a logged metric; None: every outcome column whose
            values are numbers.
        :param source: the runs, as in :meth:`info`.
        :param status: only the runs with this status (or one of these);
            None: every run. A run that did not complete has no final result.
        :raises ExmanError: ``over`` is not a parameter, or a result named
            in ``results`` is missing or not a number.
        :raises MarkNotFound: no mark ``source``.
        """
        from .look.aggregate import aggregate_frame

        frame, columns = self._load(source)
        return aggregate_frame(
            frame, columns, over=over, results=results, status=status
        )

    def table(
        self,
        rows: str | Sequence[str],
        cols: str | Sequence[str] | None = None,
        *,
        value: str,
        over: str | Sequence[str] = "seed",
        stat: str = "std",
        source: StrPath | None = None,
        query: str | None = None,
        status: str | Sequence[str] | None = "completed",
    ) -> pd.DataFrame:
        """``value`` over repetitions, one parameter down, another across.

        The runs are grouped as by :meth:`aggregate`; ``rows`` and ``cols``
        must tell the groups apart (a parameter that varies otherwise is
        named in the error: add it to ``rows``, ``cols`` or ``over``, or
        leave runs out with ``query``). Write the frame with
        :func:`exman.look.tables.render_table` (LaTeX, Markdown, CSV).

        :param rows: the parameter(s) whose values are the rows.
        :param cols: the parameter(s) whose values are the columns; None:
            one column, ``value``.
        :param value: the result (or last logged value) to aggregate.
        :param over: the parameter(s) that differ between repetitions.
        :param stat: the spread kept: ``"std"`` (sample standard deviation)
            or ``"ci"`` (half-width of the 95 % confidence interval of the
            mean, Student's t).
        :param source: the runs, as in :meth:`info`.
        :param query: a pandas query on :meth:`info`'s columns that keeps
            the runs to use: ``"epochs == 10"``.
        :param status: only the runs with this status (None: all).
        :returns: one row per value of ``rows`` (in the order of their first
            runs); the columns ``(value of cols, field)``, the fields being
            ``mean``, ``std`` or ``ci``, ``count`` (the runs) and ``ids``
            (their ids). ``table.xs("mean", axis=1, level=-1)`` is the means.
        :raises ExmanError: a name is no column, ``value`` is no number, an
            unknown ``stat``, a bad query, or ``rows`` and ``cols`` do not
            tell the groups apart.
        """
        from .look.aggregate import select, summarize
        from .look.tables import table_frame

        row_names = as_names(rows, "rows") or []
        col_names = as_names(cols, "cols") or []
        over_names = as_names(over, "over") or []
        frame, columns = self._load(source)
        frame = select(frame, query)
        summary = summarize(
            frame,
            columns,
            value=value,
            keys=[*row_names, *col_names],
            over=over_names,
            status=status,
            what="the rows or cols",
        )
        return table_frame(
            summary,
            rows=row_names,
            cols=col_names,
            value=value,
            stat=stat,
            attrs={"over": over_names, "query": query, "source": source},
        )

    def plot(
        self,
        formula: str,
        *,
        by: str | Sequence[str] | None = None,
        over: str | Sequence[str] = "seed",
        band: str | None = "std",
        logx: bool = False,
        logy: bool = False,
        source: StrPath | None = None,
        query: str | None = None,
        status: str | Sequence[str] | None = "completed",
        ax: Axes | None = None,
    ) -> Figure:
        """``"y ~ x"``: the mean of ``y`` over repetitions against ``x``.

        One line per value of ``by``, the points sorted by ``x``, a band of
        ± ``band`` around it. The runs are grouped as by :meth:`aggregate`;
        ``x`` and ``by`` must tell the groups apart. Needs matplotlib (the
        ``plots`` extra); without a display it draws with the Agg backend.

        :param formula: ``"loss ~ lr"``: a result against a parameter.
        :param by: the parameter(s) that make the lines (None: one line).
        :param over: the parameter(s) that differ between repetitions.
        :param band: ``"std"``, ``"ci"`` (95 % confidence interval of the
            mean) or None (no band).
        :param logx: a logarithmic x axis.
        :param logy: a logarithmic y axis.
        :param source: the runs, as in :meth:`info`.
        :param query: a pandas query that keeps the runs to use.
        :param status: only the runs with this status (None: all).
        :param ax: the matplotlib Axes to draw on (default: a new figure).
        :returns: the Figure; each line's label names its ``by`` values
            and the number of runs behind each point.
        :raises ExmanError: as :meth:`table`; a formula that is not
            ``"y ~ x"``; an unknown band.
        """
        from .look.aggregate import select, summarize
        from .look.plots import parse_formula, plot_summary

        y, x = parse_formula(formula)
        by_names = as_names(by, "by") or []
        frame, columns = self._load(source)
        summary = summarize(
            select(frame, query),
            columns,
            value=y,
            keys=[x, *by_names],
            over=over,
            status=status,
            what="by",
        )
        return plot_summary(
            summary, x=x, y=y, by=by_names, band=band, logx=logx, logy=logy, ax=ax
        )

    def plot_metrics(
        self,
        name: str,
        *,
        by: str | Sequence[str] | None = None,
        over: str | Sequence[str] | None = None,
        band: str | None = "std",
        smooth: int | None = None,
        logx: bool = False,
        logy: bool = False,
        source: StrPath | None = None,
        query: str | None = None,
        status: str | Sequence[str] | None = None,
        ax: Axes | None = None,
    ) -> Figure:
        """Learning curves: the metric ``name`` logged by the runs, by step.

        :param by: the parameter(s) that colour the curves and name them.
        :param over: None: one curve per run; else the parameter(s) that
            differ between repetitions: one curve per group (grouped as by
            :meth:`aggregate`), the mean at each step with a band.
        :param band: ``"std"``, ``"ci"`` or None, with ``over``.
        :param smooth: draw the trailing mean of this many records.
        :param status: only the runs with this status (None: all, running
            ones included).
        :returns: the Figure; the other parameters as in :meth:`plot`.
        :raises ExmanError: no run logged ``name``; as :meth:`plot`.
        """
        from .look.aggregate import curves, select
        from .look.plots import plot_curves

        by_names = as_names(by, "by") or []
        frame, columns = self._load(source)
        frame = select(frame, query)
        runs = list(zip(frame["id"].tolist(), frame["root"].tolist()))
        data = curves(
            metrics_frame(runs, name),
            frame,
            columns,
            value=name,
            keys=by_names,
            over=over,
            status=status,
            smooth=smooth,
        )
        return plot_curves(
            data,
            value=name,
            by=by_names,
            per_run=over is None,
            band=band,
            logx=logx,
            logy=logy,
            ax=ax,
        )

    def _load(
        self,
        source: StrPath | None,
        *,
        failed: bool = False,
        tmp: bool = False,
        stale: bool = False,
    ) -> tuple[pd.DataFrame, Columns]:
        load = Load.of(self.root, self.cache, source, failed=failed, tmp=tmp)
        return build_frame(load.run(meanwhile=prepare), stale=stale)

    def query(
        self,
        expr: str,
        source: StrPath | None = None,
        *,
        failed: bool = False,
        tmp: bool = False,
    ) -> pd.DataFrame:
        """The runs of :meth:`info` for which the query ``expr`` holds, as
        ``exman ls --query`` selects them.

        A pandas query (``"lr > 0.01 and model == 'b'"``) in which
        ``'baseline' in tags`` asks whether a run's list holds a value, for
        the ``tags`` column and every parameter whose values are lists (see
        :mod:`exman.look.query`). ``tags`` and ``note`` may be named where
        no run has any.

        :raises ExmanError: pandas refuses the query (the message says why
            and lists the columns).
        :raises MarkNotFound: no mark ``source``.
        """
        from .look.query import QueryError, query_frame

        frame = self.info(source, failed=failed, tmp=tmp)
        try:
            return query_frame(frame, expr)
        except QueryError as e:
            raise ExmanError(f"query {e}") from None

    def diff(self, first: int, *others: int, code: bool = True) -> RunDiff:
        """Run ``first`` against each of ``others``, as ``exman diff`` shows it.

        A :class:`~exman.look.compare.RunDiff` of DataFrames with one column
        per run: ``params`` (the parameters that differ), ``results`` (every
        result and last metric, with ``Δ<id>`` columns: the change from the
        first run), ``run`` (status, times, duration, commit…),
        ``environment`` (where it differs), and ``code``: for each run whose
        code differs, the diff from the first run's (``git diff`` between
        the commits where the repository is at hand, else the runs' saved
        ``changes.diff``).

        :param code: also compare the code (runs ``git``).
        :raises RunNotFound: a run is not in the root or cannot be read.
        :raises ExmanError: fewer than two runs, or one given twice.
        """
        from .look.compare import compare_runs

        return compare_runs(self.root, [first, *others], cache=self.cache, code=code)

    def row(self, num: int) -> pd.Series:
        """Run ``num`` (in ``runs/``, ``fails/`` or ``tmp/``) as a Series.

        :raises RunNotFound: no run has this id, or it cannot be read (a
            :class:`SkippedRunWarning` says why).
        """
        folder = self.root.find(num)
        load = Load(self.root, self.cache)
        load.add(folder.parent.name, folder.name, str(folder))
        frame = build_frame(load.run())[0]
        if not len(frame):
            raise RunNotFound(f"run {num} in {folder} cannot be read")
        return frame.iloc[0]
