"""Bundled plugin: the ``jacobian`` probe — conditioning of end-to-end Jacobians.

Public API: :func:`jacobian` (the probe), :class:`ScaledProduct` / :func:`log_singular_values`
(the log-domain product SVD), :func:`gradient_norms`, :func:`norm_fraction` (the scrambling
paper's Fig. 5 over an ensemble per σ), :func:`plot`.

References: mean-field paper §3.2.2; scrambling paper Fig. 5; fading-memory paper §4.1.
"""

from __future__ import annotations

import dynprobe
from dynprobe import Probe

from .ensemble import norm_fraction
from .plot import plot
from .probe import gradient_norms, jacobian
from .product import ScaledProduct, explicit_singular_values, log_singular_values
from .report import suggest, summary, verdicts

__all__ = ["jacobian", "gradient_norms", "ScaledProduct", "log_singular_values", "explicit_singular_values",
           "norm_fraction", "plot", "dynprobe_probes"]


@dynprobe.hookimpl
def dynprobe_probes() -> list[Probe]:
    return [
        Probe(
            name="jacobian",
            run=jacobian,
            plot=plot,
            suggest=suggest,
            summary=summary,
            verdicts=verdicts,
            reference="mean-field paper §3.2.2 eq. (10)-(12); scrambling paper Fig. 5; fading-memory paper §4.1",
            dims=("sample", "horizon", "sv", "step", "time"),
        )
    ]
