"""A tiny "training" script: every run gets its own folder under examples/exman."""

import math
import random

import exman

parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--model", choices=["resnet", "vit"], default="resnet")
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

with args.safe_experiment:
    rng = random.Random(args.seed)
    scale = 1.0 if args.model == "resnet" else 0.8
    loss = scale
    for epoch in range(1, args.epochs + 1):
        # A deterministic fake loss: it falls faster with a larger learning rate.
        loss = scale * math.exp(-args.lr * epoch * 5) + rng.random() * 0.01
        exman.log(step=epoch, loss=loss)  # one line of the run's metrics.jsonl
        print(f"epoch {epoch}: loss={loss:.4f}")
    exman.result(loss=loss)  # the run's final value, a column in the index
    print("run folder:", args.root)
