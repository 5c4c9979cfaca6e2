"""Lyapunov exponents as a training signal: an RNN on a long-memory task with and without a
penalty that pushes its top exponents toward a target (Engelken 2023, "gradient flossing").

Two copies of the same tanh RNN (same initial weights, same batches) are trained with Adam on
delayed recall (a value at t = 0, to be reported at t = T; ``--task adding``: the adding problem,
the sum of two cued values), read out from the final state with an RMS loss. The second adds
``weight · mean_j (λ_j − target)²``, the top-k finite-time exponents along the first ``window``
steps of the batch's own input sequences, differentiated through the QR
(``dynprobe.regularize.LyapunovRegularizer``). The exponents along the training inputs are
logged every few iterations, and the Lyapunov spectrum of the initial and both trained networks
is measured at the end with the ``lyapunov`` probe, driven by fresh inputs of the task.

An ordered network (initial gain 0.6: λ₁ ≈ −0.4) forgets the value e-fold every 1/|λ₁| steps, so
its gradients vanish over T = 50 and it stays at chance; with λ₁ pushed to 0 it keeps the value.
On the adding problem at T = 100 neither copy gets past predicting the mean within 600 iterations.

Writes ``loss.png`` (loss curves), ``exponents.png`` (λ_j over training), ``spectrum.png`` (the
three spectra) and ``summary.json`` to ``--out``.

Run:  python examples/lyapunov_regularizer.py [--quick] [--out DIR] [--target 0] [--weight 1] ...
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import dynprobe  # noqa: E402
from dynprobe.regularize import LyapunovRegularizer  # noqa: E402
from dynprobe.tasks import SequenceData  # noqa: E402

QUICK = {"hidden": 16, "T": 20, "iterations": 30, "batch": 32, "window": 10, "k": 2, "log_every": 5,
         "spectrum_steps": 200}
FULL = {"hidden": 32, "T": 50, "iterations": 400, "batch": 32, "window": 40, "k": 4, "log_every": 20,
        "spectrum_steps": 1000}


class AddingRNN(nn.Module):
    """A tanh ``nn.RNN`` with a linear readout of its final state."""

    def __init__(self, hidden: int, gain: float, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.rnn = nn.RNN(2, hidden)
        self.head = nn.Linear(hidden, 1)
        with torch.no_grad():  # recurrent weights N(0, gain²/N): gain < 1 ordered, > 1 chaotic
            self.rnn.weight_hh_l0.copy_(gain * torch.randn(hidden, hidden) / hidden**0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [time, batch, 2]
        return self.head(self.rnn(x)[1][-1])


def recall(T: int, samples: int, seed: int) -> SequenceData:
    """Delayed recall: a value v ~ U[0, 1] in channel 0 at t = 0, nothing after; the target is v at
    t = T. Memory of one number over T steps — lost at a rate λ₁ when the network is ordered."""
    gen = torch.Generator().manual_seed(int(seed))
    v = torch.rand(samples, generator=gen)
    x = torch.zeros(samples, T, 2)
    x[:, 0, 0] = v
    return SequenceData(x, v.unsqueeze(-1), "regression", "recall", attrs={"T": int(T), "seed": int(seed)})


def task_data(task: str, T: int, samples: int, seed: int) -> SequenceData:
    return recall(T, samples, seed) if task == "recall" else dynprobe.dataset("adding", T=T, samples=samples, seed=seed)


def spectrum(model: AddingRNN, k: int, steps: int, task: str, seed: int) -> np.ndarray:
    """Top-k exponents of the trained RNN driven by the task's inputs (conditional exponents)."""
    data = task_data(task, steps + 100, 2, seed + 1000)
    drive = dynprobe.sequence(data.inputs.transpose(0, 1).double())  # [time, sample, 2]
    system = dynprobe.wrap(copy.deepcopy(model.rnn).double(), dtype=torch.float64, drive=drive)
    ds = dynprobe.run("lyapunov", system, steps=steps, burn_in=100, samples=2, k=k, seed=seed)
    return ds.exponent_mean.values


def train(model: AddingRNN, args: argparse.Namespace, cfg: dict[str, Any], regularize: bool) -> dict[str, list[float]]:
    """Adam on the adding problem; with ``regularize``, plus the exponent penalty."""
    data = task_data(args.task, cfg["T"], cfg["batch"] * cfg["iterations"], args.seed)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    reg = LyapunovRegularizer(model.rnn, k=cfg["k"], steps=cfg["window"], target=args.target, seed=args.seed)
    log: dict[str, list[float]] = {"loss": [], "penalty": [], "iteration": [], "exponents": []}
    for i in range(cfg["iterations"]):
        batch = slice(cfg["batch"] * i, cfg["batch"] * (i + 1))
        x, y = data.inputs[batch].transpose(0, 1), data.targets[batch]  # x: [time, batch, 2]
        loss = torch.sqrt(torch.mean((model(x) - y) ** 2))
        probe = x[: cfg["window"], : args.reg_batch]
        if regularize:
            penalty = reg(probe)
            total = loss + args.weight * penalty
        else:
            with torch.no_grad():
                penalty = reg(probe)
            total = loss
        opt.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        log["loss"].append(float(loss.detach()))
        log["penalty"].append(float(penalty.detach()))
        if i % cfg["log_every"] == 0 or i == cfg["iterations"] - 1:
            log["iteration"].append(i)
            log["exponents"].append(reg.last_exponents.mean(0).tolist())
    return log


def _figures(out: Path, logs: dict[str, dict[str, list[float]]], spectra: dict[str, np.ndarray], args: argparse.Namespace,
             cfg: dict[str, Any]) -> None:
    colors = {"baseline": "C0", "regularized": "C3"}
    fig, ax = plt.subplots(figsize=(6.5, 3.8), constrained_layout=True)
    for name, log in logs.items():
        loss = np.asarray(log["loss"])
        smooth = np.convolve(loss, np.ones(5) / 5, mode="valid") if len(loss) >= 5 else loss
        ax.plot(loss, color=colors[name], alpha=0.25, lw=0.7)
        ax.plot(np.arange(len(smooth)) + (len(loss) - len(smooth)), smooth, color=colors[name], label=name)
    chance = np.sqrt(1 / 6) if args.task == "adding" else np.sqrt(1 / 12)  # std of the target
    ax.axhline(chance, color="k", ls=":", lw=0.8, label=f"predict the mean (RMS {chance:.2f})")
    ax.set(xlabel="iteration", ylabel="RMS loss", title=f"{args.task}, T = {cfg['T']}")
    ax.legend(fontsize=8)
    fig.savefig(out / "loss.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.5, 3.8), constrained_layout=True)
    for name, log in logs.items():
        lam = np.asarray(log["exponents"])
        for j in range(lam.shape[1]):
            ax.plot(log["iteration"], lam[:, j], color=colors[name], lw=1.2 if j == 0 else 0.7,
                    label=name if j == 0 else None)
    ax.axhline(args.target, color="k", ls="--", lw=0.8, label=f"target {args.target:g}")
    ax.set(xlabel="iteration", ylabel=r"finite-time $\lambda_j$ (1/step)",
           title=f"top-{cfg['k']} exponents over {cfg['window']} steps of the training inputs")
    ax.legend(fontsize=8)
    fig.savefig(out / "exponents.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.5, 3.8), constrained_layout=True)
    styles = {"initial": ("k", "o"), "baseline": (colors["baseline"], "s"), "regularized": (colors["regularized"], "^")}
    for name, lam in spectra.items():
        ax.plot(np.arange(1, len(lam) + 1), lam, marker=styles[name][1], color=styles[name][0], lw=1, ms=4, label=name)
    ax.axhline(args.target, color="k", ls="--", lw=0.8)
    ax.axhline(0, color="k", lw=0.5)
    ax.set(xlabel="exponent index", ylabel=r"$\lambda$ (1/step)", title=f"Lyapunov spectrum along {args.task} inputs")
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.legend(fontsize=8)
    fig.savefig(out / "spectrum.png", dpi=120)
    plt.close(fig)


def parser() -> argparse.ArgumentParser:
    """The command line (``--help`` lists every option)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized run (seconds): small network, few iterations")
    parser.add_argument("--out", default="lyapunov_regularizer_out", help="directory for the figures and summary.json")
    parser.add_argument("--task", choices=("recall", "adding"), default="recall",
                        help="delayed recall of one value (default) or the adding problem (bundled data set)")
    parser.add_argument("--target", type=float, default=0.0, help="target of the top exponents (1/step)")
    parser.add_argument("--weight", type=float, default=1.0, help="weight of the penalty against the task loss")
    parser.add_argument("--gain", type=float, default=0.6, help="initial recurrent gain g (W ~ N(0, g²/N))")
    parser.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate")
    parser.add_argument("--reg-batch", type=int, default=8, help="sequences of each batch the exponents are taken along")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the data")
    for key, value in FULL.items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=int, default=None,
                            help=f"(default {value}; --quick: {QUICK[key]})")
    return parser


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train the two copies, measure their spectra, write the figures and ``summary.json``."""
    args = parser().parse_args(argv)
    cfg = {key: getattr(args, key) if getattr(args, key) is not None else (QUICK if args.quick else FULL)[key] for key in FULL}
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    initial = AddingRNN(cfg["hidden"], args.gain, args.seed)
    models = {"baseline": copy.deepcopy(initial), "regularized": copy.deepcopy(initial)}
    logs = {name: train(model, args, cfg, regularize=name == "regularized") for name, model in models.items()}
    spectra = {name: spectrum(model, cfg["k"], cfg["spectrum_steps"], args.task, args.seed)
               for name, model in {"initial": initial, **models}.items()}
    _figures(out, logs, spectra, args, cfg)
    tail = max(1, cfg["iterations"] // 10)
    summary = {
        "config": {**cfg, "task": args.task, "target": args.target, "weight": args.weight, "gain": args.gain,
                   "lr": args.lr, "seed": args.seed},
        "lambda_1": {name: float(lam[0]) for name, lam in spectra.items()},
        "spectra": {name: lam.tolist() for name, lam in spectra.items()},
        "final_loss": {name: float(np.mean(log["loss"][-tail:])) for name, log in logs.items()},
        "exponents_during_training": {name: {"iteration": log["iteration"], "mean_over_batch": log["exponents"]}
                                      for name, log in logs.items()},
        "loss_curves": {name: log["loss"] for name, log in logs.items()},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


if __name__ == "__main__":
    result = main()
    print(f"target {result['config']['target']:+g} /step; lambda_1 (lyapunov probe along {result['config']['task']} inputs):")
    for name, lam in result["lambda_1"].items():
        print(f"  {name:12s} {lam:+.4f}")
    for name, loss in result["final_loss"].items():
        print(f"  final RMS loss {name:12s} {loss:.4f}")
