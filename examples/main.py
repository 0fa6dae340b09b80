"""A tiny "training" script: every run gets its own folder under examples/exman."""

import math
import pathlib
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
    losses = []
    for epoch in range(1, args.epochs + 1):
        # Deterministic fake loss: decays faster with a larger learning rate.
        loss = scale * math.exp(-args.lr * epoch * 5) + rng.random() * 0.01
        losses.append(loss)
        print(f"epoch {epoch}: loss={loss:.4f}")
    loss_file = pathlib.Path(args.root) / "loss.txt"
    loss_file.write_text("".join(f"{x:.6f}\n" for x in losses))
    print("run folder:", args.root)
