"""Fixed points, slow points and periodic orbits of a System's map — the shared machinery of the
``fixedpoints`` and ``period3`` probes (and of attractor checks in ``bifurcation``).

* :mod:`.maps` — :class:`PeriodMap`: Fᵖ, q = ½‖Fᵖ(h) − h‖² and its gradient, the monodromy;
* :mod:`.starts` — where searches start (visited states + noise, broad random, between orbits);
* :mod:`.solve` — batched Adam descent on q, then Levenberg–Marquardt to ‖Fᵖ(h) − h‖ ≤ 1e-10;
* :mod:`.dedup` — least periods and deduplication up to cyclic shift;
* :mod:`.spectrum` — eigenvalues, stability, unstable dimension, time constants, ∂F/∂u;
* :mod:`.search` — :func:`find_orbits`: rounds of starts until one finds nothing new.

Everything is batched over starts and over an ensemble's ``network`` axis, written against the
System API and :mod:`dynprobe.linearize` only.

References
----------
Sussillo & Barak (2013), "Opening the black box: low-dimensional dynamics in high-dimensional
recurrent neural networks", Neural Computation 25(3); Golub & Sussillo (2018), "FixedPointFinder",
JOSS 3(31): 1003; scrambling paper (``scrambling-li-yorke-chaos-random-rnns.txt``) Def. 3.1.
"""

from __future__ import annotations

from .dedup import canonical_phase, cluster, least_period
from .maps import PeriodMap, finite_norm, held_input, search_system
from .search import FIXED, SLOW, OrbitSearch, find_orbits
from .solve import KRYLOV_MIN, Descent, Refined, descend, refine, resolve_solver
from .spectrum import Linearization, input_jacobian, linearize, timescales
from .starts import SOURCES, Visited, draw_starts, visited_states

__all__ = [
    "PeriodMap", "search_system", "held_input", "finite_norm",
    "Visited", "visited_states", "draw_starts", "SOURCES",
    "Descent", "Refined", "descend", "refine", "resolve_solver", "KRYLOV_MIN",
    "least_period", "cluster", "canonical_phase",
    "Linearization", "linearize", "input_jacobian", "timescales",
    "OrbitSearch", "find_orbits", "FIXED", "SLOW",
]
