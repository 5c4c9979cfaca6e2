"""Bifurcations over training (the attractors paper's Fig. 4, in miniature), through a batch run.

1. Train an LSTM (+ linear readout) on sine-wave generation — constant input ω, target
   sin(ω (t + 1)), 100 frequencies in [π/16, π/8] (attractors paper §5.1) — with minibatch Adam,
   saving a checkpoint every epoch (``{"model": state_dict, "epoch": e}``). The paper's
   sequences are 400 steps long and it trains 4000 epochs; by default this trains on 100-step
   sequences, which a CPU learns in about a hundred epochs (``--length 400`` for the paper's).
2. ``dynprobe.batch`` runs the ``lyapunov`` probe over every checkpoint on Dask, with the network
   driven by the constant input 0.218 of the paper's Fig. 4, into a resumable Zarr store (run the
   script twice: the second batch computes nothing).
3. Plot the training loss, the orbit diagram over epochs — the steady-state output y_t and its
   first difference y_t − y_{t−1} after a burn-in of 1200 steps, from spread initial states —
   and λ_max against epoch from ``dynprobe.open_batch``.

The orbit is computed here from each checkpoint's trajectories; the ``bifurcation`` probe
(attractors paper §3.3) will give it per checkpoint inside the batch once it is installed.

Run:  python examples/training_bifurcation.py [--epochs 60] [--workers N | --scheduler ADDR] [--out DIR]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import dynprobe  # noqa: E402
from dynprobe.checkpoints import read_checkpoint  # noqa: E402

INPUT = 0.218  # the constant input of the paper's Fig. 4


class SineGenerator(nn.Module):
    """An LSTM whose readout is the generated wave."""

    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.rnn = nn.LSTM(1, hidden)
        self.readout = nn.Linear(hidden, 1)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(u)
        return self.readout(h)


def sine_task(n: int = 100, length: int = 400) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``[length, n, 1]`` (constant ω) and targets sin(ω (t + 1)), ω uniform in [π/16, π/8]."""
    omega = torch.linspace(math.pi / 16, math.pi / 8, n)
    t = torch.arange(length, dtype=torch.float32)[:, None]
    return omega.expand(length, n)[..., None].clone(), torch.sin(omega * (t + 1))[..., None]


def train(folder: Path, epochs: int, hidden: int, length: int, seed: int = 0) -> list[float]:
    """Adam on minibatches of 10 sequences, gradient norm clipped at 1; one checkpoint per epoch
    (epoch 0 = the initialization). Returns the training MSE at each checkpoint."""
    torch.manual_seed(seed)
    net = SineGenerator(hidden)
    u, y = sine_task(length=length)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    folder.mkdir(parents=True, exist_ok=True)
    losses = []
    for epoch in range(epochs + 1):
        torch.save({"model": net.state_dict(), "epoch": epoch}, folder / f"epoch_{epoch:04d}.pt")
        with torch.no_grad():
            losses.append(float(torch.mean((net(u) - y) ** 2)))
        for idx in torch.randperm(u.shape[1]).split(10) if epoch < epochs else ():
            loss = torch.mean((net(u[:, idx]) - y[:, idx]) ** 2)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
    return losses


def orbit(path: str, *, samples: int = 8, burn_in: int = 1200, record: int = 100) -> np.ndarray:
    """Steady-state outputs ``[record, samples]`` of a checkpoint under the constant input."""
    state = read_checkpoint(path).module  # the LSTM, rebuilt from the "rnn." keys
    raw = torch.load(path, weights_only=True)["model"]
    w, b = raw["readout.weight"].double(), raw["readout.bias"].double()
    system = dynprobe.wrap(state, dtype=torch.float64, drive=dynprobe.constant([INPUT]))
    h0 = 2.0 * torch.randn(samples, system.state_dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    traj = system.trajectory(h0, burn_in + record)[-record:]  # [time, sample, N]
    part = system.layout.part("h", 0)
    return (traj[..., part.start:part.stop] @ w.T + b)[..., 0].numpy()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=120)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--length", type=int, default=100, help="training sequence length (paper: 400)")
    parser.add_argument("--steps", type=int, default=500, help="Lyapunov steps per checkpoint")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--scheduler", default=None, help="tcp://host:port of a running Dask scheduler")
    parser.add_argument("--out", type=Path, default=Path("training_bifurcation"))
    args = parser.parse_args(argv)

    losses = train(args.out / "checkpoints", args.epochs, args.hidden, args.length)
    summary = dynprobe.batch(str(args.out / "checkpoints" / "epoch_*.pt"), ["lyapunov"], args.out / "runs.zarr",
                             probe_params={"lyapunov": {"k": 8, "steps": args.steps, "burn_in": 200, "samples": 2}},
                             drive=f"constant:{INPUT}", workers=args.workers, scheduler=args.scheduler)
    print(f"batch: {summary}")
    lyap = dynprobe.open_batch(args.out / "runs.zarr")["lyapunov"].ds
    epochs = lyap.epoch.values
    lam_max = lyap.exponent_mean.sel(exponent=1).values
    orbits = [orbit(p) for p in lyap.checkpoint.values]

    fig, axes = plt.subplots(4, 1, figsize=(7, 10), sharex=True, constrained_layout=True)
    axes[0].semilogy(np.arange(len(losses)), losses)
    axes[0].set(ylabel="training MSE", title=f"LSTM({args.hidden}) on sine generation; diagrams at input {INPUT}")
    for e, y in zip(epochs, orbits, strict=True):
        axes[1].plot(np.full(y.size, e), y.ravel(), ",k", alpha=0.5)
        axes[2].plot(np.full(y.size - y.shape[1], e), np.diff(y, axis=0).ravel(), ",k", alpha=0.5)
    axes[1].set(ylabel="steady-state $y_t$")
    axes[2].set(ylabel="$y_t - y_{t-1}$")
    axes[3].plot(epochs, lam_max, "o-", ms=3)
    axes[3].axhline(0, color="k", lw=0.8)
    axes[3].set(xlabel="epoch", ylabel="λ_max (1/step)")
    fig.savefig(args.out / "training_bifurcation.png", dpi=120)
    print(f"wrote {args.out / 'training_bifurcation.png'}")
    return {"summary": summary, "epochs": epochs, "lam_max": lam_max, "orbits": orbits, "losses": losses}


if __name__ == "__main__":  # the guard Dask's worker processes need
    main()
