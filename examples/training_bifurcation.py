"""Bifurcations over training (the attractors paper's Fig. 4) as a batch run over checkpoints.

1. Train an LSTM (+ linear head) on ``sine_generation`` — constant input ω, target sin(ω(t + 1)),
   frequencies in [π/16, π/8] (attractors paper §5.1) — with minibatch Adam, saving a checkpoint
   every epoch (``{"model": state_dict, "epoch": e}``). The paper trains on 400-step sequences
   for 4000 epochs; by default this trains on 100-step ones, which a CPU learns in about a
   hundred epochs (``--length 400`` for the paper's).
2. ``dynprobe.batch`` runs ``bifurcation`` (the orbit after a burn-in of 1200 steps, from
   spread initial states, classified) and ``lyapunov`` (k = 8) over every checkpoint on Dask,
   with the network driven by the constant input 0.218 of Fig. 4, into a resumable Zarr store
   (run the script twice: the second batch computes nothing).
3. From ``dynprobe.open_batch``: the orbit diagram over epochs coloured by regime — a fixed
   point until the network learns to oscillate, then a limit cycle — and λ_max against epoch
   (→ 0 on the limit cycle, as it must for a periodic orbit), under the training loss.

The batch rebuilds each LSTM from the ``rnn.`` keys of the checkpoint; the orbit is the mean
of its state (the paper plots the head's output y_t, a linear function of the same state: the
attractors and their classification are the same). ``examples/attractors_lstm.py`` draws y_t
in-process through the ``bifurcation`` probe's ``Checkpoints`` path.

Run:  python examples/training_bifurcation.py [--epochs 120] [--workers N | --scheduler ADDR] [--out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import dynprobe  # noqa: E402

INPUT = 0.218  # the constant input of the paper's Fig. 4
COLOURS = {"fixed_point": "tab:blue", "periodic": "tab:green", "quasi_periodic": "tab:orange", "chaotic": "tab:red",
           "multistable": "tab:purple", "divergent": "k"}


class SineGenerator(nn.Module):
    """An LSTM whose linear head is the generated wave."""

    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.rnn = nn.LSTM(1, hidden)
        self.head = nn.Linear(hidden, 1)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(u)
        return self.head(h)


def train(folder: Path, epochs: int, hidden: int, length: int, seed: int = 0) -> list[float]:
    """Adam on minibatches of 10 sequences, gradient norm clipped at 1; one checkpoint per epoch
    (epoch 0 = the initialization). Returns the training MSE at each checkpoint."""
    torch.manual_seed(seed)
    net = SineGenerator(hidden)
    data = dynprobe.dataset("sine_generation", T=length)
    u, y = data.time_major(), data.targets.transpose(0, 1)  # nn.LSTM is time-major
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


def parser() -> argparse.ArgumentParser:
    """The command line of :func:`main`."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=120, help="training epochs (one checkpoint each)")
    p.add_argument("--hidden", type=int, default=32, help="LSTM hidden units")
    p.add_argument("--length", type=int, default=100, help="training sequence length (paper: 400)")
    p.add_argument("--burn-in", type=int, default=1200, help="discarded steps before the orbit (paper: 1200)")
    p.add_argument("--steps", type=int, default=500, help="Lyapunov steps per checkpoint")
    p.add_argument("--workers", type=int, default=None, help="local Dask worker processes")
    p.add_argument("--scheduler", default=None, help="tcp://host:port of a running Dask scheduler")
    p.add_argument("--out", type=Path, default=Path("training_bifurcation"), help="directory for everything written")
    return p


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parser().parse_args(argv)

    losses = train(args.out / "checkpoints", args.epochs, args.hidden, args.length)
    params = {
        "bifurcation": {"path": "input", "values": [1.0], "burn_in": args.burn_in, "steps": 100, "samples": 8,
                        "spread": 2.0},
        "lyapunov": {"k": 8, "steps": args.steps, "burn_in": 200, "samples": 2},
    }
    summary = dynprobe.batch(str(args.out / "checkpoints" / "epoch_*.pt"), list(params), args.out / "runs.zarr",
                             probe_params=params, drive=f"constant:{INPUT}", workers=args.workers,
                             scheduler=args.scheduler)
    print(f"batch: {summary}")
    tree = dynprobe.open_batch(args.out / "runs.zarr")
    orbit = tree["bifurcation"].ds.isel(param=0)
    lyap = tree["lyapunov"].ds
    epochs, regimes = orbit.epoch.values, orbit.regime.values

    fig, axes = plt.subplots(3, 1, figsize=(7, 8), sharex=True, constrained_layout=True)
    axes[0].semilogy(np.arange(len(losses)), losses)
    axes[0].set(ylabel="training MSE", title=f"LSTM({args.hidden}) on sine generation; input held at {INPUT}")
    for regime in np.unique(regimes):
        pick = regimes == regime
        values = orbit.orbit.values[pick].reshape(int(pick.sum()), -1)
        xs = np.repeat(epochs[pick], values.shape[1])
        axes[1].scatter(xs, values.ravel(), s=0.3, color=COLOURS.get(str(regime), "grey"), label=str(regime))
    axes[1].set(ylabel=f"state mean after {args.burn_in} steps")
    axes[1].legend(loc="upper left", markerscale=10, fontsize=8)
    axes[2].plot(lyap.epoch.values, lyap.exponent_mean.sel(exponent=1).values, "o-", ms=3, label="lyapunov (k = 8)")
    axes[2].plot(epochs, orbit.max_exponent.values, ".", ms=4, label="bifurcation (short QR)")
    axes[2].axhline(0, color="k", lw=0.8)
    axes[2].set(xlabel="epoch", ylabel="λ_max (1/step)")
    axes[2].legend(fontsize=8)
    fig.savefig(args.out / "training_bifurcation.png", dpi=120)
    plt.close(fig)
    oscillating = [int(e) for e, r in zip(epochs, regimes, strict=True) if r in ("periodic", "quasi_periodic")]
    print(f"first epoch with an oscillating attractor: {oscillating[0] if oscillating else 'none'}; "
          f"wrote {args.out / 'training_bifurcation.png'}")
    return {"summary": summary, "tree": tree, "losses": losses, "first_oscillating": oscillating[:1]}


if __name__ == "__main__":  # the guard Dask's worker processes need
    main()
