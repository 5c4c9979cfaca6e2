"""Critical versus off-critical initialization, seen through the end-to-end Jacobian.

For the vanilla RNN (orthogonal W on the χ₁ = 1 line, q* = 0.5) and the minimalRNN (Algorithm 1,
q* = 16, μ_b = 2), each against the common off-critical choice σ_w² = σ_v² = 1 (mean-field paper
§4.2), driven by random inputs: the singular values of ∂h_T/∂h_0 at T = 1, 10, 50, 100 (log σᵢ
per step), the gradient norm ‖∂h_T/∂h_t‖ against t, and mean-field's χ₁^T against the measured
mean squared singular value. Critical networks keep the spectrum near 0 (dynamical isometry) and
gradients flat; off-critical ones make them vanish exponentially.

Writes ``critical_init.png``. Run ``python examples/critical_init.py [out_dir] [--width N ...]``
(``--help`` lists the options); the test suite runs a small version through :func:`run`.

References: mean-field paper §3.2.2, Algorithm 1, §4.2; fading-memory paper §4.1.
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
from dynprobe.plugins.meanfield import (
    critical_init,  # noqa: E402
    predict_point,  # noqa: E402
)


def _networks(width: int, inputs: int, seed: int) -> dict[str, torch.nn.Module]:
    nets = {}
    for cell, kwargs in (("vanilla", {"q_star": 0.5, "R": 1.0}), ("minimalrnn", {"q_star": 16.0, "mu_b": 2.0})):
        critical = dynprobe.model(cell, input_size=inputs, hidden_size=width, dtype=torch.float64, seed=seed)
        if cell == "minimalrnn":  # R is the second moment of x̃ = tanh(W_x x) for x ~ N(0, 1)
            probe = torch.randn(4000, inputs, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
            with torch.no_grad():
                kwargs["R"] = float(critical.embed(probe).pow(2).mean())
        critical_init(critical, seed=seed, **kwargs)
        nets[f"{cell} critical"] = critical
        nets[f"{cell} off-critical"] = dynprobe.model(cell, input_size=inputs, hidden_size=width, sigma_w=1.0,
                                                      sigma_v=1.0, dtype=torch.float64, seed=seed)
    return nets


def run(out: Path, *, width: int = 128, horizons: tuple[int, ...] = (1, 10, 50, 100), samples: int = 2,
        seed: int = 0) -> dict[str, Path]:
    """Measure the four networks and write ``critical_init.png`` to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    inputs = 4
    T = max(horizons)
    x = torch.randn(T + 1, samples, inputs, dtype=torch.float64, generator=torch.Generator().manual_seed(seed + 1))
    nets = _networks(width, inputs, seed)
    fig, axes = plt.subplots(3, 4, figsize=(15, 9.5), constrained_layout=True)
    for col, (label, net) in enumerate(nets.items()):
        system = dynprobe.wrap(net, drive=dynprobe.sequence(x))
        ds = dynprobe.run("jacobian", system, horizons=horizons, samples=samples, step_stats=False)
        pred = predict_point(system, horizons=horizons)
        ax = axes[0, col]
        for k, t in enumerate(horizons):
            ax.plot(ds.sv.values, ds.log_singular_values.isel(sample=0, horizon=k).values / t, label=f"T = {t}")
        ax.axhline(0, color="k", lw=0.7)
        ax.set(title=f"{label}\nchi_1 (estimated) = {pred.chi_1:.3f}", xlabel="singular value index",
               ylabel="log(sigma_i) / T")
        ax.legend(fontsize=7)
        ax = axes[1, col]
        ax.plot(ds.time.values, ds.log_grad_norm.isel(sample=0).values / np.log(10))
        ax.set(xlabel="t", ylabel=f"log10 ||dh_{T}/dh_t||_2", title="gradient propagation")
        ax = axes[2, col]
        measured = np.exp(ds.log_mean_sq_sv.mean("sample").values)
        ax.semilogy(horizons, measured, "o-", label="measured tr(JJ^T)/N")
        ax.semilogy(horizons, pred.values["mean_sq_sv"], "k--", label="mean field chi_1^T")
        ax.set(xlabel="horizon T", ylabel="mean squared singular value")
        ax.legend(fontsize=7)
    path = out / "critical_init.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return {"critical_init": path}


def parser() -> argparse.ArgumentParser:
    """The command line: :func:`run`'s arguments, with its defaults."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", nargs="?", type=Path, default=Path("critical_init_figures"), help="directory for the figure")
    p.add_argument("--width", type=int, default=128, help="hidden units of each network")
    p.add_argument("--horizons", type=lambda s: tuple(int(t) for t in s.split(",")), default=(1, 10, 50, 100),
                   help="comma-separated horizons T (default 1,10,50,100)")
    p.add_argument("--samples", type=int, default=2, help="input sequences per network")
    p.add_argument("--seed", type=int, default=0)
    return p


if __name__ == "__main__":
    args = parser().parse_args()
    for name, path in run(args.out, width=args.width, horizons=args.horizons, samples=args.samples,
                          seed=args.seed).items():
        print(f"{name}: {path}")
