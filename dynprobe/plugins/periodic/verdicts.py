"""What the ``period3``, ``scrambling`` and ``linear_regions`` results say: terminal summaries
and the verdicts ``diagnose`` prints (topic ``attractors`` for orbits and the Li–Yorke witness,
``regime`` for scrambling, ``entropy`` for the growth of linear pieces).

References
----------
Scrambling paper Def. 2.1–2.2, 3.1, Fact 1, Cor. 4.4; Li & Yorke (1975); Sharkovsky (1964).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from dynprobe import Verdict

from .orbits1d import implied_text
from .regions import LN_PHI

__all__ = ["period3_summary", "period3_verdicts", "scrambling_summary", "scrambling_verdicts", "regions_summary",
           "regions_verdicts"]

_REF_ORBITS = "scrambling paper Def. 3.1 (periodic points); Floquet multipliers of ∏J"
_REF_LY = "scrambling paper Fact 1 (Li & Yorke 1975, Sharkovsky 1964)"


def period3_summary(ds: xr.Dataset) -> list[tuple[str, str]]:
    """Counts per period, stability, the Li–Yorke witness and what Sharkovsky implies."""
    method = str(ds.attrs["method"])
    rows = [("method", f"{method} ({ds.attrs['interval']})" if "interval" in ds.attrs else method)]
    if "network" in ds.dims:
        n = ds.sizes["network"]
        rows.append(("networks", str(n)))
        for p in ds.period.values:
            frac = float(ds.has_period.sel(period=p).mean())
            rows.append((f"period {p} found", f"{frac:.4f} of networks (± {np.sqrt(frac * (1 - frac) / n):.4f})"))
        if "li_yorke" in ds:
            rows.append(("Li-Yorke (period 3)", f"{float(ds.li_yorke.mean()):.4f} of networks"))
        if "lemma42_certificate" in ds:
            rows.append(("Lemma 4.2 certificate", f"{float(ds.lemma42_certificate.mean()):.4f} of networks"))
        return rows
    for p in ds.period.values:
        sel = ds.orbit_period.values == p
        rows.append((f"period {p}", f"{int(sel.sum())} orbit(s), {int(ds.stable.values[sel].sum())} stable"))
    if "li_yorke" in ds:
        rows.append(("Li-Yorke chaos", "yes: a period-3 orbit exists" if bool(ds.li_yorke) else "no period-3 orbit"))
        rows.append(("Sharkovsky", implied_text(int(ds.sharkovsky_leader))))
    elif "li_yorke_note" in ds.attrs:
        rows.append(("note", ds.attrs["li_yorke_note"]))
    if "complete" in ds:
        rows.append(("search", _search_text(ds)))
    return rows


def _orbit_line(ds: xr.Dataset) -> str:
    parts = []
    for p in ds.period.values:
        sel = ds.orbit_period.values == p
        name = "fixed point" if p == 1 else f"period-{p} orbit"
        count = int(sel.sum())
        if count:
            parts.append(f"{count} {name}{'s' if count > 1 else ''} ({int(ds.stable.values[sel].sum())} stable)")
        else:
            parts.append(f"no {name}")
    return "; ".join(parts)


def _search_text(ds: xr.Dataset) -> str:
    """How far the n-D search got: starts per period and which periods' searches are complete."""
    if "complete" not in ds:
        return "Levenberg-Marquardt from many starts (orbits found, not proven complete)"
    done = ds.complete.values.astype(bool)
    starts = ", ".join(f"{int(n)}" for n in ds.starts_used.values)
    open_ = [str(int(p)) for p, ok in zip(ds.period.values, done) if not ok]
    state = "every search complete (the last 2 rounds found nothing new)" if not open_ else \
        f"search not complete for period {', '.join(open_)}"
    return f"descent on q + Levenberg-Marquardt in float64 from {starts} starts; {state}"


def period3_verdicts(ds: xr.Dataset) -> list[Verdict]:
    """Orbits found with their stability; for maps of the line the Li–Yorke witness."""
    method = ds.attrs.get("method", "")
    if "network" in ds.dims:
        if "li_yorke" not in ds:
            return []
        n = ds.sizes["network"]
        frac = float(ds.li_yorke.mean())
        return [Verdict("attractors", f"Li-Yorke chaotic (period 3) in {100 * frac:.2f}% of {n} networks",
                        f"{method}; ± {100 * np.sqrt(frac * (1 - frac) / n):.2f}% (binomial)", _REF_LY)]
    mu = np.hypot(ds.multiplier_real.values, ds.multiplier_imag.values)
    worst = f"; largest |multiplier| of a stable orbit {np.nanmax(mu[ds.stable.values]):.3g}" if ds.stable.any() else ""
    how = {"exact": "exact enumeration of linear pieces (all orbits)",
           "grid": f"grid of step {ds.attrs.get('resolution', 0):.2g}",
           "newton": _search_text(ds)}.get(method, method)
    out = [Verdict("attractors", _orbit_line(ds), f"{how}{worst}", _REF_ORBITS)]
    if "li_yorke" in ds:
        if bool(ds.li_yorke):
            pts = ds.orbit_state.values[ds.orbit_period.values == 3][0, :3, 0]
            out.append(Verdict("attractors", "Li-Yorke chaotic: a period-3 orbit exists",
                               f"orbit {{{', '.join(f'{x:.6g}' for x in np.sort(pts))}}}; "
                               + implied_text(3), _REF_LY))
        else:
            lead = int(ds.sharkovsky_leader)
            out.append(Verdict("attractors", "no period-3 orbit" + (" (exhaustive)" if method == "exact" else " found"),
                               implied_text(lead), _REF_LY))
    return out


def regions_summary(ds: xr.Dataset) -> list[tuple[str, str]]:
    rate = np.atleast_1d(ds.growth_rate.values)
    last = np.atleast_2d(ds.pieces.values)[:, -1]
    return [
        (f"pieces of f^{int(ds.horizon.values[-1])}", f"median {np.median(last):.0f}, max {last.max():.0f}"),
        ("growth rate (nats/step)", f"median {np.median(rate):.4f}; >= ln phi = {LN_PHI:.4f} in "
                                    f"{float((rate >= LN_PHI).mean()):.3f} of networks"),
    ]


def scrambling_summary(ds: xr.Dataset) -> list[tuple[str, str]]:
    return [
        ("scrambled pairs (proximal, not asymptotic)", f"{float(ds.scrambled.mean()):.3f}"),
        ("asymptotic pairs", f"{float(ds.asymptotic.mean()):.3f}"),
        ("separation rate (median)", f"{float(np.nanmedian(ds.separation_rate.values)):+.4f} 1/step"),
        ("largest Lyapunov exponent (median)", f"{float(np.nanmedian(ds.lyapunov_max.values)):+.4f} 1/step"),
    ]


def regions_verdicts(ds: xr.Dataset) -> list[Verdict]:
    """Growth of linear pieces against ln φ."""
    rate = np.atleast_1d(ds.growth_rate.values)
    if rate.size > 1:
        return [Verdict("entropy", f"linear pieces grow at >= ln phi in {float((rate >= LN_PHI).mean()):.3f} of "
                                   f"{rate.size} networks", f"median growth {np.median(rate):.3f} nats/step",
                        "scrambling paper Cor. 4.4")]
    r = float(rate[0])
    word = "exponentially" if r > 0.05 else "slowly"
    if r >= LN_PHI:
        word = "exponentially (>= ln phi, as period 3 forces)"
    return [Verdict("entropy", f"linear pieces of f^t grow {word}",
                    f"{int(np.atleast_1d(ds.pieces.values)[-1])} pieces at t = {int(ds.horizon.values[-1])}; "
                    f"growth {r:.3f} nats/step vs ln phi = {LN_PHI:.4f}", "scrambling paper Cor. 4.4")]


def scrambling_verdicts(ds: xr.Dataset) -> list[Verdict]:
    """Whether nearby trajectories scramble, merge or drift apart, with the separation rate."""
    if "network" in ds.dims:
        return []
    scrambled, asymptotic = float(ds.scrambled.mean()), float(ds.asymptotic.mean())
    rate = float(np.nanmedian(ds.separation_rate.values))
    lam = float(np.nanmedian(ds.lyapunov_max.values))
    if scrambled >= 0.5:
        word = "nearby trajectories scramble (come close and separate again)"
    elif asymptotic >= 0.5:
        word = "nearby trajectories merge (asymptotic)"
    elif rate > 0:
        word = "nearby trajectories separate exponentially; few came back close within the run"
    else:
        word = "nearby trajectories stay apart"
    return [Verdict("regime", word,
                    f"{100 * scrambled:.0f}% of {ds.sizes['sample']} pairs scrambled, "
                    f"{100 * asymptotic:.0f}% asymptotic; "
                    f"separation rate {rate:+.3g} /step vs λ₁ {lam:+.3g} /step (δ = {ds.attrs['delta']:.0e})",
                    "scrambling paper Def. 2.1-2.2, Fig. 1")]
