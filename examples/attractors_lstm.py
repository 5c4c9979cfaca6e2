"""Attractors and smoothness of LSTM training — the attractors paper's Fig. 1 and Fig. 4, with dynprobe.

1. Fig. 1: the 2-unit chaotic LSTM along θ(s) = s·θ_true — the orbit diagram coloured by regime,
   the largest Lyapunov exponent beneath it, and the cost V_N(s) with its Lipschitz estimates as
   N grows (Thm 1). Chaos for roughly 0.9 ≲ s ≲ 1.45, where the cost turns intricate.
2. Fig. 4: a short training run of an LSTM on ``sine_generation``, saving checkpoints, then the
   bifurcation diagram over epochs under a constant input (ω = 0.218): the fixed point the
   untrained network has gives way to a limit cycle when it learns to oscillate.

Run ``python examples/attractors_lstm.py [--out DIR] [--quick]``; ``--quick`` is the CI-sized
variant the tests run. Figures and checkpoints go to DIR (default ``attractors_out``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

import dynprobe
from dynprobe.plugins.bifurcation import Checkpoints, plot_2d, plot_orbit_diagram

OMEGA = 0.218  # the constant input of the paper's Fig. 4


def fig1(out: Path, *, quick: bool) -> dict[str, Any]:
    """Orbit diagram, λ_max(s) and the loss scan of the chaotic LSTM (Fig. 1)."""
    import matplotlib.pyplot as plt

    system = dynprobe.load_system("lstm2d_chaotic")
    values = "0.5:2.0:61" if quick else "0.5:2.0:601"
    orbit = dynprobe.run("bifurcation", system, sweep="lstm2d_chaotic", values=values, samples=4 if quick else 8)
    scan = dynprobe.run("smoothness", system, values="0.5:2.0:201" if quick else "0.5:2.0:2001",
                        lengths=(5, 10, 20, 50, 100), burn_in=0)
    fig = plt.figure(figsize=(13, 8), constrained_layout=True)
    grid = fig.add_gridspec(3, 2, width_ratios=(1.7, 1), height_ratios=(3, 1.2, 1.8))
    ax1 = fig.add_subplot(grid[0, 0])
    ax2 = fig.add_subplot(grid[1, 0], sharex=ax1)
    ax3 = fig.add_subplot(grid[2, 0], sharex=ax1)
    plot_orbit_diagram(orbit, axes=(ax1, ax2))
    ax2.set_xlabel("")
    for n in (10, 50, 100):
        ax3.plot(scan.param.values, scan.loss.sel(length=n).values, lw=0.7, label=f"N = {n}")
    ax3.set(xlabel="s in theta(s) = s * theta_true", ylabel="MSE cost V_N(s)", title="Fig. 1(b): the cost along the path")
    ax3.legend(fontsize=7)
    ax4 = fig.add_subplot(grid[:2, 1])
    plot_2d(orbit, ax=ax4)
    ax5 = fig.add_subplot(grid[2, 1])
    ax5.semilogy(scan.length.values, scan.lipschitz_loss.values, "o-", label="L_V")
    ax5.semilogy(scan.length.values, scan.lipschitz_grad.values, "s-", label="L'_V")
    ax5.semilogy(scan.length.values, scan.lipschitz_ceiling.values, ":", color="0.5", label="grid ceiling")
    ax5.set(xlabel="sequence length N", title="Thm 1: Lipschitz estimates grow with N")
    ax5.legend(fontsize=7)
    path = out / "fig1_chaotic_lstm.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    chaotic = orbit.param.values[orbit.regime.values == "chaotic"]
    return {"figure": path, "chaotic_from": float(chaotic.min()), "chaotic_to": float(chaotic.max()), "orbit": orbit,
            "scan": scan}


class SineGenerator(nn.Module):
    """LSTM followed by a linear readout (attractors paper §5.1)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(1, hidden)
        self.head = nn.Linear(hidden, 1)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(u)
        return self.head(out)


def train_sine(out: Path, *, epochs: int, hidden: int, length: int, sequences: int, every: int, seed: int = 0,
               lr: float = 3e-3) -> list[int]:
    """Train on ``sine_generation``; save a checkpoint (``state_dict``) every ``every`` epochs."""
    torch.manual_seed(seed)
    data = dynprobe.dataset("sine_generation", samples=sequences, T=length)
    inputs, targets = data.time_major(), data.targets.transpose(0, 1)  # nn.LSTM is time-major
    model = SineGenerator(hidden)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    folder = out / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    for epoch in range(epochs + 1):
        if epoch % every == 0:
            torch.save(model.state_dict(), folder / f"epoch_{epoch:05d}.pt")
            saved.append(epoch)
        if epoch == epochs:
            break
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(inputs), targets)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if epoch % max(1, epochs // 5) == 0:
            print(f"  epoch {epoch:5d}  MSE {loss.item():.4f}")
    return saved


def load_checkpoint(path: Path, hidden: int) -> dynprobe.System:
    """A System for one saved checkpoint: the LSTM, its own readout head, input ω held constant."""
    model = SineGenerator(hidden)
    model.load_state_dict(torch.load(path, weights_only=True))
    model = model.double()
    head = model.head

    def readout(h: torch.Tensor) -> torch.Tensor:
        return head(h[..., :hidden])

    return dynprobe.wrap(model.lstm, drive=dynprobe.constant(OMEGA), readout=readout)


def epochs_diagram(out: Path, epochs: list[int], *, hidden: int, burn_in: int) -> dict[str, Any]:
    """Bifurcation diagram of the output y_t over training epochs (Fig. 4)."""
    import matplotlib.pyplot as plt

    systems = [load_checkpoint(out / "checkpoints" / f"epoch_{e:05d}.pt", hidden) for e in epochs]
    ds = dynprobe.run("bifurcation", None, path=Checkpoints(items=systems, labels=epochs, long_name="training epoch"),
                      projection="readout",
                      burn_in=burn_in, steps=100, samples=4)
    fig = plt.figure(figsize=(13, 5.5), constrained_layout=True)
    grid = fig.add_gridspec(2, 2, width_ratios=(1.6, 1), height_ratios=(3, 1.2))
    ax1 = fig.add_subplot(grid[0, 0])
    ax2 = fig.add_subplot(grid[1, 0], sharex=ax1)
    plot_orbit_diagram(ds, axes=(ax1, ax2))
    ax1.set_title(f"Fig. 4: output y_t after a burn-in of {burn_in} steps, constant input {OMEGA}, over epochs")
    plot_2d(ds, ax=fig.add_subplot(grid[:, 1]))
    path = out / "fig4_sine_epochs.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    regimes = ds.regime.values
    oscillating = [e for e, r in zip(epochs, regimes) if r in ("periodic", "quasi_periodic", "chaotic")]
    return {"figure": path, "dataset": ds, "first_oscillating_epoch": oscillating[0] if oscillating else None,
            "regimes": {int(e): str(r) for e, r in zip(epochs, regimes)}}


def main(out: str | Path = "attractors_out", *, quick: bool = False) -> dict[str, Any]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    one = fig1(out, quick=quick)
    print(f"Fig. 1: chaotic for {one['chaotic_from']:.3f} <= s <= {one['chaotic_to']:.3f} (paper: ~0.9 to ~1.45) "
          f"-> {one['figure']}")
    cfg = dict(epochs=30, hidden=8, length=60, sequences=8, every=10) if quick else dict(
        epochs=800, hidden=32, length=100, sequences=20, every=20)
    print(f"training an LSTM({cfg['hidden']}) on sine_generation for {cfg['epochs']} epochs ...")
    epochs = train_sine(out, epochs=cfg["epochs"], hidden=cfg["hidden"], length=cfg["length"],
                        sequences=cfg["sequences"], every=cfg["every"])
    four = epochs_diagram(out, epochs, hidden=cfg["hidden"], burn_in=200 if quick else 1200)
    print(f"Fig. 4: regimes over epochs: {four['regimes']}")
    print(f"first epoch with an oscillating attractor: {four['first_oscillating_epoch']} -> {four['figure']}")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return {"fig1": one, "fig4": four}


def parser() -> argparse.ArgumentParser:
    """The command line: :func:`main`'s arguments, with its defaults."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="attractors_out", help="directory for the figures and checkpoints")
    p.add_argument("--quick", action="store_true", help="CI-sized run")
    return p


if __name__ == "__main__":
    args = parser().parse_args()
    main(args.out, quick=args.quick)
