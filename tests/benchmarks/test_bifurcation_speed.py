"""Speed of a 1,000-value bifurcation sweep of the 2-unit LSTM (attractors paper Fig. 1).

Baseline, in the same process: the paper's own recipe — for each s, load θ(s) = s·θ_true into an
``nn.LSTM`` and run its (fused) forward for 200 steps from the samples' initial states; measured
on a subset of values and reported per value. The probe additionally runs the QR exponent and
classifies every value. Run with ``pytest tests/benchmarks -q``.
"""

from __future__ import annotations

import time

import numpy as np
import torch

import dynprobe


def _baseline_per_value(values: np.ndarray, samples: int) -> float:
    lstm = dynprobe.model("lstm2d_chaotic")
    theta = {k: v.detach().clone() for k, v in lstm.state_dict().items()}
    h0 = dynprobe.load_system("lstm2d_chaotic").initial_state(samples, seed=0)
    state = (h0[:, :2].unsqueeze(0).contiguous(), h0[:, 2:].unsqueeze(0).contiguous())
    u = torch.zeros(200, samples, 1, dtype=torch.float64)
    start = time.perf_counter()
    with torch.no_grad():
        for s in values:
            lstm.load_state_dict({k: s * v for k, v in theta.items()})
            lstm(u, state)
    return (time.perf_counter() - start) / len(values)


def _vectorized_simulation(system: dynprobe.System, values: np.ndarray, samples: int) -> float:
    from dynprobe.plugins.bifurcation import Scale, make_projection, record_orbits
    from dynprobe.plugins.bifurcation.orbit import signature_basis

    start = time.perf_counter()
    ensemble = Scale().build(system, values)
    h0 = system.initial_state(samples, seed=0).expand(len(values), samples, system.state_dim).contiguous()
    project = make_projection(ensemble, "mean")[0]
    basis = signature_basis(system.state_dim, seed=0, dtype=system.dtype, device=system.device)
    record_orbits(ensemble, h0, burn_in=100, steps=100, project=project, basis=basis, escape=1e6)
    return (time.perf_counter() - start) / len(values)


def test_thousand_value_sweep(benchmark) -> None:
    torch.set_num_threads(1)
    system = dynprobe.load_system("lstm2d_chaotic")
    values = np.linspace(0.5, 2.0, 1000)
    dynprobe.run("bifurcation", system, values=values[:5], steps=20)  # warm up
    ds = benchmark.pedantic(lambda: dynprobe.run("bifurcation", system, values=values, samples=8), rounds=3,
                            iterations=1)
    probe_per_value = benchmark.stats.stats.median / len(values)
    loop_per_value = _baseline_per_value(values[::10], samples=8)
    sim_per_value = _vectorized_simulation(system, values, samples=8)
    benchmark.extra_info.update({
        "vectorized_simulation_s_per_value": sim_per_value,
        "loop_over_vectorized_simulation_ratio": loop_per_value / sim_per_value,
        "probe_s_per_value": probe_per_value,
        "nn_lstm_loop_s_per_value": loop_per_value,
        "loop_over_probe_ratio": loop_per_value / probe_per_value,
    })
    print(f"\nprobe {probe_per_value * 1e3:.2f} ms/value (simulation + QR exponent + classification); "
          f"nn.LSTM loop {loop_per_value * 1e3:.2f} ms/value (simulation only); "
          f"ratio {loop_per_value / probe_per_value:.2f}; vectorized simulation alone {sim_per_value * 1e3:.2f} ms/value, "
          f"ratio {loop_per_value / sim_per_value:.1f}")
    assert ds.sizes["param"] == 1000
