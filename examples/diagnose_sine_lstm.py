"""Diagnose your own RNN: train an LSTM to generate sine waves, save it, and ask dynprobe what it learned.

1. Train ``SineGenerator`` — an ``nn.LSTM(1, 32)`` and a linear readout — on the attractors paper's
   ``sine_generation`` task (§5.1: a constant input ω, the target sin(ω(t+1))).
2. Save its ``state_dict`` to ``OUT/sine_lstm.pt``: what you have after training your own model.
3. Diagnose the LSTM under a constant input ω — the paper's Fig. 4 set-up — and write the report.

The command-line equivalent of step 3, on the saved file (the LSTM is found under the ``lstm.``
prefix; the readout head beside it is ignored)::

    dynprobe diagnose OUT/sine_lstm.pt --input constant:0.3 --report OUT/sine_report.html

Run ``python examples/diagnose_sine_lstm.py [--out DIR] [--epochs N]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch import nn

import dynprobe

OMEGA = 0.3  # a frequency inside the training range [π/16, π/8] ≈ [0.196, 0.393]


class SineGenerator(nn.Module):
    """LSTM followed by a linear readout (attractors paper §5.1)."""

    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.lstm = nn.LSTM(1, hidden)
        self.head = nn.Linear(hidden, 1)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(u)
        return self.head(out)


def train(epochs: int, *, seed: int = 0) -> tuple[SineGenerator, float]:
    """Full-batch Adam on 20 frequencies, sequences of 100 steps; returns the model and final MSE."""
    torch.manual_seed(seed)
    data = dynprobe.dataset("sine_generation", samples=20, T=100)
    inputs, targets = data.time_major(), data.targets.transpose(0, 1)
    model = SineGenerator()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss = torch.tensor(float("nan"))
    for epoch in range(epochs):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(inputs), targets)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if epoch % max(1, epochs // 5) == 0:
            print(f"  epoch {epoch:4d}  MSE {loss.item():.4f}")
    return model, loss.item()


def main(out: str | Path = "sine_out", *, epochs: int = 800) -> dynprobe.Diagnosis:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    print(f"training SineGenerator for {epochs} epochs ...")
    model, mse = train(epochs)
    torch.save(model.state_dict(), out / "sine_lstm.pt")
    print(f"final MSE {mse:.4f}; saved {out / 'sine_lstm.pt'}")

    # the LSTM as a dynamical system under the constant input ω, with its own readout
    head = model.head.double()
    system = dynprobe.wrap(model.lstm, dtype=torch.float64, drive=dynprobe.constant(OMEGA),
                           readout=lambda h: head(h[..., :32]))
    result = dynprobe.diagnose(system)
    for topic, verdict, evidence, source in result.rows():
        print(f"{topic:>10}  {verdict}\n{'':>12}{evidence}  [{source}]")
    report = dynprobe.write_report(result, out / "sine_report.html", title="dynprobe diagnosis — sine-generating LSTM")
    dynprobe.save(result.tree, out / "sine_diagnosis.nc")
    print(f"wrote {report} in {time.perf_counter() - start:.1f} s")
    return result


def parser() -> argparse.ArgumentParser:
    """The command line: :func:`main`'s arguments, with its defaults."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="sine_out", help="directory for the checkpoint, results and report")
    p.add_argument("--epochs", type=int, default=800, help="training epochs")
    return p


if __name__ == "__main__":
    args = parser().parse_args()
    main(args.out, epochs=args.epochs)
