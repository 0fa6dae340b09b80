"""Data-parallel training with torch.distributed, on CPU: one run for all ranks.

torchrun --nproc_per_node 2 examples/ddp.py --epochs 5
"""

import torch
import torch.distributed as dist

import exman

parser = exman.ExParser(root=exman.simpleroot(__file__))
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--epochs", type=int, default=5)
args = parser.parse_args()  # on every rank: the same run, args.root the same

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
torch.manual_seed(rank)  # each rank its own share of the data
x = torch.randn(64, 3)
y = x @ torch.tensor([1.0, -2.0, 0.5])
w = torch.zeros(3, requires_grad=True)

with args.safe_experiment:  # rank 0 prints to log.txt, rank 1 to log.rank1.txt
    for epoch in range(args.epochs):
        loss = ((x @ w - y) ** 2).mean()
        loss.backward()
        dist.all_reduce(w.grad)  # the ranks average their gradients
        with torch.no_grad():
            w -= args.lr * w.grad / world
            w.grad.zero_()
        exman.log(step=epoch, loss=loss.item())  # rank 0's records are kept
        print(f"rank {rank} epoch {epoch}: loss {loss.item():.4f}")

exman.result(loss=((x @ w - y) ** 2).mean().item())  # rank 0's result
if rank == 0:
    torch.save(w.detach(), args.root / "w.pt")
dist.destroy_process_group()
