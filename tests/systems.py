"""Small reference systems with exact answers, shared by the tests (``from systems import ...``)."""

from __future__ import annotations

import torch

import dynprobe


def linear_system(A: torch.Tensor, **kw: object) -> dynprobe.System:
    """h' = A h as a System (float64)."""
    A = torch.as_tensor(A, dtype=torch.float64)
    return dynprobe.System.from_step(lambda h, u, p: h @ p["A"].T, state_dim=A.shape[0], params={"A": A},
                                     name="linear", **kw)


def logistic_system(r: float) -> dynprobe.System:
    """x' = r x (1 - x) on [0, 1]."""
    return dynprobe.System.from_step(
        lambda h, u, p: p["r"] * h * (1 - h),
        state_dim=1,
        params={"r": torch.tensor(r, dtype=torch.float64)},
        init=dynprobe.InitialState(low=0.1, high=0.9),
        name="logistic",
    )


def henon_system(a: float = 1.4, b: float = 0.3) -> dynprobe.System:
    """(x, y)' = (1 - a x² + y, b x)."""

    def henon(h: torch.Tensor, u: torch.Tensor, p: dict) -> torch.Tensor:
        x, y = h[..., 0], h[..., 1]
        return torch.stack([1 - p["a"] * x**2 + y, p["b"] * x], dim=-1)

    return dynprobe.System.from_step(
        henon,
        state_dim=2,
        params={"a": torch.tensor(a, dtype=torch.float64), "b": torch.tensor(b, dtype=torch.float64)},
        init=dynprobe.InitialState(scale=0.1),
        name="henon",
    )


def tent_system() -> dynprobe.System:
    """The tent map 2x (x <= 1/2), 2(1 - x) beyond, on the whole line, as a ReLU network
    2 relu(x) - 2 relu(-x) - 4 relu(x - 1/2) (so the period3 probe treats it exactly)."""
    from dynprobe.plugins.models.feedforward1d import feedforward_system

    d = torch.float64
    return feedforward_system(
        [torch.tensor([[1.0], [-1.0], [1.0]], dtype=d), torch.tensor([[2.0, -2.0, -4.0]], dtype=d)],
        [torch.tensor([0.0, 0.0, -0.5], dtype=d), torch.tensor([0.0], dtype=d)],
        ["relu", "identity"], name="tent",
    )
