"""The result dimensions as code: one closed vocabulary, one record per dimension.

Every dimension of a probe's result is either a name of :data:`VOCABULARY` or one the probe
declares itself (``Probe(..., dims=(..., Dimension(...)))``, for third-party plugins whose
results need an axis the core does not define). One name, one meaning: ``time`` is always the
time index t of a state h_t, never a number of steps averaged (``avg_steps``) or the t of the
one-step map h_{t−1} → h_t (``step``). :func:`dynprobe.validate` and
:func:`dynprobe.testing.check_probe` enforce it through :func:`check_dims`; docs/RESULTS.md's
*Terms* table is :func:`terms_table` (tests/test_schema.py keeps the two equal).

No xarray at import: :mod:`dynprobe.specs` reads this module when a plugin registers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal, get_args

from .errors import PluginError

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["Dimension", "CoordinateKind", "VOCABULARY", "LEAD_DIMS", "dimension", "declared_dims", "check_dims",
           "terms_table"]

CoordinateKind = Literal["index", "steps", "value", "label"]
"""What a dimension's coordinate holds: ``index`` — integer labels (0, 1, … or 1, 2, …);
``steps`` — integer step counts or time indices; ``value`` — numbers of a quantity (a swept
parameter, a quantile level); ``label`` — text (a file path, a probe name)."""

_DTYPE_KINDS = {"index": "iu", "steps": "iu", "value": "iuf", "label": "OUS"}
_DTYPE_WORDS = {"index": "integers", "steps": "integers", "value": "numbers", "label": "text"}


@dataclass(frozen=True)
class Dimension:
    """One dimension of a result: its name, what it means, and what its coordinate holds.

    Parameters
    ----------
    name
        The dimension (and coordinate) name.
    meaning
        What one position along it is, in one sentence (docs/RESULTS.md's *Terms*).
    coordinate
        What the coordinate's values are, as a reader writes it (``1, 2, …``, ``the values``).
    units
        The coordinate's ``units`` attr; ``None`` when it is the units of the quantity the
        coordinate holds (``param``: whatever the swept parameter is measured in).
    kind
        A :data:`CoordinateKind`: the coordinate's dtype must fit it.
    """

    name: str
    meaning: str
    coordinate: str
    units: str | None
    kind: CoordinateKind

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise PluginError(f"dimension {self.name!r}: the name must be a Python identifier")
        if self.kind not in get_args(CoordinateKind):
            raise PluginError(f"dimension {self.name!r}: kind={self.kind!r}; use one of {', '.join(get_args(CoordinateKind))}")
        if not self.meaning.strip():
            raise PluginError(f"dimension {self.name!r}: say what it means (meaning='...')")

    def problems(self, coord: xr.DataArray, where: str) -> list[str]:
        """What is wrong with ``coord`` as this dimension's coordinate (units, dtype)."""
        out = []
        units = coord.attrs.get("units")
        if self.units is not None and units is not None and units != self.units:
            out.append(f"{where}: coordinate {self.name!r} has units {units!r}, but {self.name!r} ({self.meaning}) is "
                       f"in {self.units!r}; use {self.units!r}, or a dimension of another name for another quantity")
        if coord.dtype.kind not in _DTYPE_KINDS[self.kind]:
            out.append(f"{where}: coordinate {self.name!r} has dtype {coord.dtype}; {self.name!r} holds "
                       f"{_DTYPE_WORDS[self.kind]} ({self.coordinate})")
        return out


def _dims(*rows: tuple[str, str, str, str | None, CoordinateKind]) -> Mapping[str, Dimension]:
    return MappingProxyType({row[0]: Dimension(*row) for row in rows})


_GRID = "axis of a mean-field grid (several at once: a phase diagram)"

VOCABULARY: Mapping[str, Dimension] = _dims(
    ("sample", "initial condition, trajectory, sequence of a batch or pair of trajectories", "0, 1, …", "1", "index"),
    ("network", "independent network of an ensemble (random init, checkpoint, sweep point)", "0, 1, …", "1", "index"),
    ("checkpoint", "checkpoint file of a batch run", "path, plus `epoch`/`step` when known", "1", "label"),
    ("probe", "probe of a batch run (its index)", "probe name", "1", "label"),
    ("time", "time index t of a state h_t (counted from where the probe's contract says)", "int steps", "step",
     "steps"),
    ("step", "t of a one-step quantity at step t, the step h_{t−1} → h_t (e.g. J_t = ∂h_t/∂h_{t−1})", "1, 2, …",
     "step", "steps"),
    ("avg_steps", "number of steps a running average is over (an estimate after that many steps)", "int steps",
     "step", "steps"),
    ("horizon", "T of the T-step map f^T: its Jacobian J_T = ∂h_T/∂h_0, its linear pieces", "int steps", "step",
     "steps"),
    ("length", "length N of the sequences a cost is evaluated on", "int steps", "step", "steps"),
    ("tau", "length τ of the windows a finite-time quantity is averaged over", "int steps", "step", "steps"),
    ("vector_time", "time index t of the states at which vectors are returned (a subset of the run's `time`)",
     "int steps", "step", "steps"),
    ("exponent", "index of a Lyapunov exponent, 1 = largest", "1, 2, …", "1", "index"),
    ("sv", "singular-value index, 1 = largest", "1, 2, …", "1", "index"),
    ("eigen", "index of a loss-Hessian eigenvalue (order in attrs `which`)", "1, 2, …", "1", "index"),
    ("split", "index j of a splitting of the tangent space: the first j vectors against the rest", "1, 2, …", "1",
     "index"),
    ("unit", "state coordinate", "0…N−1, with `unit_part` (\"h\"/\"c\"), `unit_layer`, `unit_index`", "1", "index"),
    ("period", "orbit period p", "1, 2, …", "step", "steps"),
    ("orbit", "periodic orbit found (all periods and networks in one flat list)", "0, 1, …", "1", "index"),
    ("round", "round of an orbit search (a batch of fresh starts)", "1, 2, …", "1", "index"),
    ("point", "a fixed or slow point found (`fixedpoints`; padded across networks / conditions, see `valid`)",
     "0, 1, …", "1", "index"),
    ("mode", "eigenvalue index of a linearization, 1 = largest modulus: the Jacobian at a fixed point, the "
             "monodromy matrix (Floquet multipliers) of a periodic orbit", "1, 2, …", "1", "index"),
    ("input", "input coordinate (of u, ∂F/∂u)", "0…M−1", "1", "index"),
    ("condition", "a held constant input of an input-conditioned search", "0, 1, …, with `input_value[condition, input]`",
     "1", "index"),
    ("pc", "principal component of the visited states, 1 = largest variance", "1, 2, 3", "1", "index"),
    ("track", "a fixed point followed across checkpoints (`track_fixed_points`)", "0, 1, …", "1", "index"),
    ("phase", "position along a periodic orbit, 0 … p−1 in dynamical order", "int steps", "step", "steps"),
    ("param", "value of a swept quantity (its name in the coordinate's `long_name`)", "the values", None, "value"),
    ("midpoint", "midpoint between neighbouring `param` values (finite differences)", "the values", None, "value"),
    ("graph", "point x of the window on which a 1-D map's graph is drawn", "the x values", "1", "value"),
    ("quantile", "quantile level of a distribution", "0 … 1", "1", "value"),
    ("sigma_w", f"{_GRID}: recurrent weight scale σ_w", "the values", "1", "value"),
    ("sigma_v", f"{_GRID}: input weight scale σ_v", "the values", "1", "value"),
    ("sigma_b", f"{_GRID}: bias standard deviation σ_b", "the values", "1", "value"),
    ("mu_b", f"{_GRID}: bias mean μ_b", "the values", "1", "value"),
    ("R", f"{_GRID}: input second moment R", "the values", "1", "value"),
    ("sigma12", f"{_GRID}: input cosine similarity Σ₁₂", "the values", "1", "value"),
)
"""Every dimension the core and the bundled probes use. Closed: a new axis is a new entry here
(for the core) or a :class:`Dimension` a plugin declares (for its own results)."""

LEAD_DIMS = ("network", "checkpoint")
"""Dimensions the framework adds in front of any result (ensembles, batch stores): allowed
whether or not a probe declares them."""


def dimension(name: str) -> Dimension:
    """The vocabulary's record for ``name``; :class:`~dynprobe.errors.PluginError` naming the
    fix when there is none."""
    try:
        return VOCABULARY[name]
    except KeyError:
        raise PluginError(f"dimension {name!r} is not in dynprobe's vocabulary ({', '.join(VOCABULARY)}); use one of "
                          f"those or declare your own: dynprobe.Dimension({name!r}, meaning=..., coordinate=..., "
                          "units=..., kind=...)") from None


def declared_dims(declared: Iterable[str | Dimension], where: str) -> Mapping[str, Dimension]:
    """Resolve a probe's ``dims`` declaration: vocabulary names and its own :class:`Dimension`
    records. An own dimension may not reuse a vocabulary name for another meaning."""
    out: dict[str, Dimension] = {}
    for item in declared:
        if isinstance(item, Dimension):
            known = VOCABULARY.get(item.name)
            if known is not None and known != item:
                raise PluginError(f"{where}: dimension {item.name!r} is dynprobe's ({known.meaning}); declare it by "
                                  f"name ({item.name!r}), or give your own meaning another name")
            dim = item
        elif isinstance(item, str):
            try:
                dim = dimension(item)
            except PluginError as err:
                raise PluginError(f"{where}: {err}") from err
        else:
            raise PluginError(f"{where}: dims holds {item!r}; use vocabulary names or dynprobe.Dimension records")
        out[dim.name] = dim
    return MappingProxyType(out)


def check_dims(ds: xr.Dataset, declared: Mapping[str, Dimension] | None, probe: str = "") -> list[str]:
    """The problems of ``ds``'s dimensions: each must be declared by its probe (``declared``;
    ``None``: any vocabulary name) or be a :data:`LEAD_DIMS` one, and its coordinate must have
    the dimension's units and kind of values."""
    where = f"probe {probe!r}" if probe else "result"
    problems = []
    for name in ds.dims:
        dim = (declared or {}).get(name) or VOCABULARY.get(name)
        if dim is None:
            problems.append(f"{where}: dimension {name!r} is neither in dynprobe's vocabulary nor declared by the probe; "
                            f"use a vocabulary name (dynprobe.schema.VOCABULARY) or declare it: Probe(..., dims=(..., "
                            f"dynprobe.Dimension({name!r}, meaning=..., coordinate=..., units=..., kind=...)))")
            continue
        if declared is not None and name not in declared and name not in LEAD_DIMS:
            problems.append(f"{where}: dimension {name!r} is not among the probe's declared dims "
                            f"({', '.join(declared)}); add {name!r} to Probe(..., dims=...)")
        if name in ds.coords:
            problems += dim.problems(ds.coords[name], where)
    return problems


def terms_table() -> str:
    """docs/RESULTS.md's *Terms* table, from :data:`VOCABULARY`."""
    rows = ["| dimension | meaning | coordinate | units |", "|---|---|---|---|"]
    for d in VOCABULARY.values():
        units = f"`{d.units}`" if d.units is not None else "of the quantity"
        rows.append(f"| `{d.name}` | {d.meaning} | {d.coordinate} | {units} |")
    return "\n".join(rows)
