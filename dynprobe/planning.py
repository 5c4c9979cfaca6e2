"""What ``diagnose`` will run, with which parameters, and how long it should take.

For each probe asked for: does it apply (``Probe.applies``), which defaults suit this system
(``Probe.suggest``, then the user's ``--param`` overrides), the ``--quick`` preset, and the
time estimate (:mod:`dynprobe.timings`). A probe whose ``applies`` or ``suggest`` raises is a
failure of that probe alone, never of the plan.

The quick preset is defined here, once, for every probe: a probe's ``suggest`` that takes a
``quick`` keyword chooses its own quick values; for any other probe the *work budgets* among
its integer options — the names in :data:`QUICK_BUDGETS` — are multiplied by
:data:`QUICK_FACTOR` (never below the floor given there, never above the value it had).
Options the user set explicitly are never scaled. Quick results are real results with fewer
steps and samples: their standard errors are larger and say so.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .api import error_line, probe_applies
from .errors import DynprobeError, NotApplicable
from .registry import registry
from .specs import Probe
from .system import System
from .timings import estimate_s, format_duration, timing_key

__all__ = ["Plan", "Planned", "plan", "quick_params", "QUICK_FACTOR", "QUICK_BUDGETS"]

QUICK_FACTOR = 0.25
"""``--quick`` multiplies every work budget by this."""

QUICK_BUDGETS: Mapping[str, int] = {
    "steps": 20, "burn_in": 10, "samples": 2, "starts": 4, "mc_steps": 10, "mc_networks": 2, "power_iters": 5,
    "batch": 8,
}
"""Integer options whose size the run time is proportional to, with the smallest quick value."""


@dataclass(frozen=True)
class Planned:
    """One probe to run: its parameters and, when known, the expected seconds."""

    name: str
    params: dict[str, Any]
    estimate_s: float | None = None


@dataclass
class Plan:
    """The probes to run (in order), and the ones skipped (reason) or failed (error) already."""

    runs: list[Planned] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def estimate_line(self) -> str:
        """One honest line: the total of the known estimates, and which probes have none."""
        if not self.runs:
            return "no probe to run"
        known = [p.estimate_s for p in self.runs if p.estimate_s is not None]
        unknown = [p.name for p in self.runs if p.estimate_s is None]
        if not known:
            return f"{len(self.runs)} probe(s) to run; no time estimate yet (first run of these at this size here)"
        line = f"{len(self.runs)} probe(s) to run, estimated {format_duration(sum(known))}"
        return line + (f" plus {', '.join(unknown)} (no estimate yet)" if unknown else " (from earlier runs)")


def _accepts_quick(fn: Any) -> bool:
    try:
        return "quick" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def quick_params(spec: Probe, params: Mapping[str, Any], fixed: Iterable[str] = ()) -> dict[str, Any]:
    """``params`` (defaults included) with the probe's work budgets scaled by
    :data:`QUICK_FACTOR`, except the options in ``fixed`` (set by the user)."""
    fixed = set(fixed)
    out = dict(params)
    for p in spec.params:
        value = out.get(p.name, p.default)
        floor = QUICK_BUDGETS.get(p.name)
        if floor is None or p.name in fixed or type(value) is not int:
            continue
        out[p.name] = min(value, max(floor, round(value * QUICK_FACTOR)))
    return out


def _suggested(spec: Probe, system: System, quick: bool) -> tuple[dict[str, Any], bool]:
    """The probe's size-scaled defaults, and whether it applied ``quick`` itself."""
    if spec.suggest is None:
        return {}, False
    own_quick = quick and _accepts_quick(spec.suggest)
    chosen = spec.suggest(system, quick=True) if own_quick else spec.suggest(system)
    return dict(chosen or {}), own_quick


def _estimate(spec: Probe, system: System, params: Mapping[str, Any]) -> float | None:
    if spec.estimate is not None:
        try:
            value = spec.estimate(system, params)
            if value is not None and float(value) >= 0:
                return float(value)
        except Exception:  # noqa: BLE001 - an estimate is never worth a failure
            pass
    return estimate_s(timing_key(spec.name, system, params))


def plan(system: System, probes: Iterable[str] | None, params: Mapping[str, Mapping[str, Any]], *,
         quick: bool = False) -> Plan:
    """Decide what runs. Unknown names are the user's error (raised, with a suggestion);
    everything a plugin does wrong here is recorded in ``Plan.failed`` for that probe."""
    reg = registry()
    names = list(probes) if probes is not None else list(reg.probes())
    for name in names:
        if name not in reg.probes():
            reg.probe(name)  # raises: unknown (did you mean, plugins that failed to load)
    out = Plan()
    for name in names:
        try:
            spec = reg.probe(name)
            reason = probe_applies(spec, system)
        except DynprobeError as err:  # a name registered twice, an applies() that crashed
            out.failed[name] = error_line(err)
            continue
        if reason:
            out.skipped[name] = reason
            continue
        user = dict(params.get(name, {}))
        try:
            chosen, own_quick = _suggested(spec, system, quick)
        except NotApplicable as decline:
            if name not in params:  # the user's own parameters may make it apply: run it then
                out.skipped[name] = str(decline)
                continue
            chosen, own_quick = {}, False
        except KeyboardInterrupt:
            raise
        except BaseException as err:  # noqa: BLE001 - a plugin bug: this probe fails, the plan goes on
            out.failed[name] = f"suggest() raised {error_line(err)}"
            continue
        chosen.update(user)
        missing = [p.name for p in spec.params if p.required and p.name not in chosen]
        if missing:
            out.skipped[name] = f"needs parameters {', '.join(missing)} (pass them with --param {name}.{missing[0]}=...)"
            continue
        if quick and not own_quick:
            chosen = {k: v for k, v in quick_params(spec, {**spec.defaults(), **chosen}, fixed=user).items()
                      if k in chosen or v != spec.defaults().get(k)}
        out.runs.append(Planned(name, chosen, _estimate(spec, system, {**spec.defaults(), **chosen})))
    return out

