"""Bundled plugin: covariant Lyapunov vectors and hyperbolicity (``clv``), local rates and
finite-time exponents (``finite_time``).

References: Ginelli et al. (2007) PRL 99, 130601; Ginelli, Chaté, Livi & Politi (2013) J. Phys. A
46, 254005; Kuptsov & Parlitz (2012) J. Nonlinear Sci. 22, 727; Grassberger, Badii & Politi (1988)
J. Stat. Phys. 51, 135; fading-memory paper App. A (the QR method underneath both).
"""

from __future__ import annotations

import dynprobe
from dynprobe import Probe

from .finite_time import finite_time
from .plot import plot_clv, plot_finite_time
from .probe import canonical_signs, clv, compute_clv, hyperbolicity_of
from .report import (
    CLV_REF,
    FTLE_REF,
    clv_summary,
    clv_verdicts,
    finite_time_summary,
    finite_time_verdicts,
    suggest_clv,
    suggest_finite_time,
)

__all__ = ["clv", "finite_time", "compute_clv", "canonical_signs", "hyperbolicity_of", "dynprobe_probes"]


@dynprobe.hookimpl
def dynprobe_probes() -> list[Probe]:
    return [
        Probe(name="clv", run=clv, plot=plot_clv, suggest=suggest_clv, summary=clv_summary, verdicts=clv_verdicts,
              reference=CLV_REF + " (Ginelli's forward-backward method)",
              dims=("sample", "time", "vector_time", "unit", "exponent", "split")),
        Probe(name="finite_time", run=finite_time, plot=plot_finite_time, suggest=suggest_finite_time,
              summary=finite_time_summary, verdicts=finite_time_verdicts, reference=FTLE_REF,
              dims=("sample", "step", "exponent", "tau", "quantile")),
    ]
