"""docs/examples/analysis.ipynb runs from top to bottom in a real Jupyter
kernel: a sweep, the index, the aggregate over seeds and two figures."""

from __future__ import annotations

import base64
import pathlib
from typing import Any

import nbclient
import nbformat

REPO = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "docs" / "examples" / "analysis.ipynb"
PNG = b"\x89PNG\r\n\x1a\n"


def outputs(nb: Any) -> list[Any]:
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]


def test_the_analysis_notebook_runs_and_draws(tmp_path: pathlib.Path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert not outputs(nb), "commit the notebook without outputs: the docs run it"
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=120,
        # where the docs build runs it: the notebook's folder
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    got = outputs(nb)
    assert not [o for o in got if o.output_type == "error"]
    images = [o.data["image/png"] for o in got if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # the aggregate by hand, by index.plot, the curves
    assert all(base64.b64decode(image).startswith(PNG) for image in images)
    text = "\n".join(
        o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in got
    )
    assert "18 completed" in text  # the sweep ran every task
    assert "loss_mean" in text and "loss_std" in text  # the aggregate table


def test_a_kernel_reads_runs_in_one_process() -> None:
    """A Jupyter kernel runs threads of its own (its output, its heartbeat):
    a load there never forks (see exman.look.fork)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("from exman.look import fork\nfork.can_fork()")
    ]
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    assert outputs(nb)[0].data["text/plain"] == "False"
