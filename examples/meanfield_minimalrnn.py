"""Mean-field theory of the minimalRNN next to Monte-Carlo: the mean-field paper's Fig. 1 (c, e)
and Algorithm 1.

* ``fig1c.png`` — c*, the pre-activation cosine similarity the two copies settle at once their
  inputs agree (Σ₁₂ = 0 for t < 10, then 1), against μ_b: theory (eq. 8), untied and tied
  Monte-Carlo. σ_w = 6.88, σ_v = 1.39, R = 0.46 put the order-to-chaos point at μ_b = 0.
* ``fig1e.png`` — the timescale τ = −1/log χ_c* against μ_b for Σ₁₂ = 1, 0.99 and 0: a
  critical point at μ_b = 0 only for Σ₁₂ = 1, and τ → ∞ as μ_b grows whatever Σ₁₂.
* ``algorithm1.png`` — Algorithm 1's critical σ_w and σ_v against μ_b for a few q*, with χ₁
  (eq. 13) of the result, which is 1.

Run ``python examples/meanfield_minimalrnn.py [out_dir]`` (about a minute; ``--help`` lists the
options); the test suite runs a small version through :func:`run`.

References: mean-field paper §3.2, Fig. 1, Algorithm 1.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import dynprobe  # noqa: E402
from dynprobe.plugins.meanfield import cosine_mc, critical_hyper, fig1_schedule, predict  # noqa: E402
from dynprobe.plugins.meanfield.theory import Grid, cosine_trajectory  # noqa: E402

FIG1 = {"sigma_w": 6.88, "sigma_v": 1.39, "sigma_b": 0.0, "R": 0.46}


def fig1c(out: Path, mu: np.ndarray, *, width: int, networks: int, steps: int) -> Path:
    """c* against μ_b: theory, untied and tied Monte-Carlo (the mean over the last 5 steps)."""
    grid = Grid.of("minimalrnn", "tanh", mu_b=mu, sigma12=1.0, **FIG1)
    theory = predict(grid)
    schedule = fig1_schedule(steps)
    traj = cosine_trajectory(grid, schedule, theory["q_star"], theory["mean_gate"])
    mc = {"untied": [], "tied": []}
    for i, m in enumerate(mu):
        hyper = {**FIG1, "mu_b": float(m)}
        for tied in (False, True):
            c = cosine_mc("minimalrnn", hyper, schedule, q_star=float(theory["q_star"][i]),
                          Q_star=float(theory["Q_star"][i]), tied=tied, networks=networks, width=width, seed=i,
                          dtype=torch.float32)
            mc["tied" if tied else "untied"].append(c[-5:].mean())
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    ax1.plot(mu, theory["c_star"], "k--", lw=2, label="theory c* (eq. 8)")
    ax1.plot(mu, traj[:, -5:].mean(-1), ":", color="C2", label=f"theory c^t, last 5 of {steps} steps")
    ax1.plot(mu, mc["untied"], "C0o-", ms=3, label=f"MC untied (N={width})")
    ax1.plot(mu, mc["tied"], "o--", color="grey", ms=3, label="MC tied")
    ax1.set(xlabel="bias mean mu_b", ylabel="c*", title="Fig. 1(c): sigma_w=6.88, sigma_v=1.39, R=0.46")
    ax1.legend(fontsize=8)
    show = np.linspace(0, len(mu) - 1, 5).astype(int)
    for k in show:
        ax2.plot(np.arange(1, steps + 1), traj[k], label=f"mu_b = {mu[k]:.1f}")
    ax2.axvline(10, color="k", lw=0.6)
    ax2.set(xlabel="step t", ylabel="c^t (theory)", title="Sigma_12 = 0 before step 10, 1 after")
    ax2.legend(fontsize=7)
    path = out / "fig1c.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def fig1e(out: Path, mu: np.ndarray) -> Path:
    """τ against μ_b for Σ₁₂ = 1, 0.99, 0 (theory)."""
    s12 = np.array([1.0, 0.99, 0.0])
    res = predict(Grid.of("minimalrnn", "tanh", mu_b=mu[:, None], sigma12=s12[None, :], **FIG1))
    fig, ax = plt.subplots(figsize=(5.2, 3.8), constrained_layout=True)
    for j, s in enumerate(s12):
        ax.semilogy(mu, res["tau"][:, j], label=f"Sigma_12 = {s:g}")
    ax.axvline(0, color="k", lw=0.6)
    ax.set(xlabel="bias mean mu_b", ylabel="tau (steps)", title="Fig. 1(e): timescale of signal propagation")
    ax.legend()
    path = out / "fig1e.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def algorithm1(out: Path, mu: np.ndarray) -> Path:
    """Algorithm 1 over μ_b for a few q*, and χ₁ of its output."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    for q in (16.0, 32.0, 64.0):
        rows = []
        for m in mu:
            try:
                h = critical_hyper("minimalrnn", q_star=q, mu_b=float(m), R=FIG1["R"])
            except dynprobe.errors.ProbeParameterError:
                rows.append((np.nan, np.nan, np.nan))
                continue
            chi = predict(Grid.of("minimalrnn", "tanh", sigma_w=h["sigma_w"], sigma_v=h["sigma_v"], sigma_b=0.0,
                                  mu_b=float(m), R=FIG1["R"], sigma12=1.0), correlations=False)["chi_1"]
            rows.append((h["sigma_w"], h["sigma_v"], float(chi) - 1.0))
        rows = np.asarray(rows)
        ax1.plot(mu, rows[:, 0], label=f"sigma_w, q* = {q:g}")
        ax1.plot(mu, rows[:, 1], "--", label=f"sigma_v, q* = {q:g}")
        ax2.plot(mu, np.abs(rows[:, 2]) + 1e-17, label=f"q* = {q:g}")
    ax1.set(xlabel="mu_b", title="Algorithm 1 (R = 0.46; gaps: infeasible, sigma_v^2 < 0)")
    ax1.legend(fontsize=7)
    ax2.set(xlabel="mu_b", ylabel="|chi_1 - 1| of the result", yscale="log", ylim=(1e-17, 1e-6),
            title="the output is critical (eq. 13)")
    ax2.legend(fontsize=7)
    path = out / "algorithm1.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run(out: Path, *, points: int = 25, width: int = 512, networks: int = 4, steps: int = 40) -> dict[str, Path]:
    """Write the three figures to ``out``; smaller arguments make a quick version."""
    out.mkdir(parents=True, exist_ok=True)
    mu = np.linspace(-4.0, 8.0, points)
    return {"fig1c": fig1c(out, mu, width=width, networks=networks, steps=steps), "fig1e": fig1e(out, mu),
            "algorithm1": algorithm1(out, mu)}


def parser() -> argparse.ArgumentParser:
    """The command line: :func:`run`'s arguments, with its defaults."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", nargs="?", type=Path, default=Path("meanfield_minimalrnn_figures"),
                   help="directory for the figures")
    p.add_argument("--points", type=int, default=25, help="values of mu_b in [-4, 8]")
    p.add_argument("--width", type=int, default=512, help="hidden units of the Monte-Carlo networks")
    p.add_argument("--networks", type=int, default=4, help="Monte-Carlo networks per point")
    p.add_argument("--steps", type=int, default=40, help="Monte-Carlo steps")
    return p


if __name__ == "__main__":
    args = parser().parse_args()
    for name, path in run(args.out, points=args.points, width=args.width, networks=args.networks,
                          steps=args.steps).items():
        print(f"{name}: {path}")
