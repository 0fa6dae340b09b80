"""A root made by a real ExParser script for the tests of tables and plots.

2 models x 2 datasets x 3 seeds, each run in its own process. The final
loss and the logged curve are known functions of the parameters, so the
tests can say what every mean and deviation must be.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """\
import exman

parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--model", default="mlp")
parser.add_argument("--dataset", default="x")
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--layers", type=int, nargs="+", default=[1, 2])
args = parser.parse_args()
with args.safe_experiment:
    final = loss(args.model, args.dataset, args.lr, args.seed)
    for step in range(STEPS):
        exman.log(step=step, loss=final + 1 / (1 + step))
    exman.result(loss=final)
"""

STEPS = 4
MODELS = {"mlp": 1.0, "cnn": 2.0}
SEED_STEP = 0.25


def loss(model: str, dataset: str, lr: float, seed: int) -> float:
    """The final loss of a run: what the tests expect."""
    return MODELS.get(model, 3.0) + 0.5 * len(dataset) + lr + SEED_STEP * seed


def write_script(folder: Path) -> Path:
    import inspect

    source = inspect.getsource(loss)
    text = SCRIPT.replace("STEPS", str(STEPS)).replace(
        "import exman\n",
        f"import exman\n\nMODELS = {MODELS!r}\nSEED_STEP = {SEED_STEP!r}\n\n{source}\n",
        1,
    )
    path = folder / "main.py"
    path.write_text(text)
    return path


def make_root(folder: Path, configs: list[list[str]], *, parallel: int = 3) -> Path:
    """Run ``main.py`` once per argument list, a few processes at a time;
    returns the root (``folder/exman``)."""
    script = write_script(folder)
    env = {k: v for k, v in os.environ.items() if k != "EXMAN_ROOT"}
    pending = list(configs)
    while pending:
        batch, pending = pending[:parallel], pending[parallel:]
        procs = [
            subprocess.Popen(
                [sys.executable, str(script), *argv],
                cwd=folder,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for argv in batch
        ]
        for proc, argv in zip(procs, batch):
            out, _ = proc.communicate(timeout=60)
            assert proc.returncode == 0, (argv, out)
    return folder / "exman"


def grid(
    models: list[str] = ["mlp", "cnn"],  # noqa: B006
    datasets: list[str] = ["x", "yy"],  # noqa: B006
    seeds: range = range(3),
    extra: tuple[str, ...] = (),
) -> list[list[str]]:
    """The argument lists of every model x dataset x seed."""
    return [
        ["--model", m, "--dataset", d, "--seed", str(s), *extra]
        for m, d, s in itertools.product(models, datasets, seeds)
    ]
