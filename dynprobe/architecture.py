"""What a System is built of: the typed contract between adapters, which fill it, and probes,
which read it.

An adapter knows the network it wrapped — its cell family, nonlinearity, layer count and sizes,
and which parameter plays which part (recurrent matrix, input matrix, biases). It records that
here, in one closed vocabulary, so that a probe asks ``system.arch.family == "lstm"`` and
``system.arch.param("recurrent", layer=0)`` instead of matching adapter-specific strings or
parameter names. ``System.meta`` stays for free-form facts a *user* reads (the module's repr,
its dropout); no probe switches on it.

References
----------
Fading-memory paper §2.1 (an RNN as a dynamical system); mean-field paper §3.1–3.2 (the
vanilla and minimalRNN cells and their weight laws); scrambling paper Def. 2.3 (1-D
feedforward maps iterated as RNNs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ProbeParameterError

__all__ = ["Architecture", "WeightRole", "FAMILIES", "FAMILY_NAMES", "ROLES", "NONLINEARITIES", "CUSTOM"]

FAMILIES = ("elman", "gru", "lstm", "minimalrnn", "wcrnn", "feedforward_1d", "custom")
"""Cell families. ``elman``: h' = φ(W h + V u + b) (``nn.RNN``, the mean-field vanilla RNN);
``gru``/``lstm``: PyTorch's gate equations; ``minimalrnn``: mean-field paper eq. (5);
``wcrnn``: the fading-memory paper's residual RNN; ``feedforward_1d``: a 1 → … → 1 map fed
back into itself; ``custom``: anything else (a user's cell, a plain function)."""

ROLES = (
    "recurrent",        # W_hh: acts on the layer's own state
    "input",            # W_ih: acts on the layer's input (the drive, or the layer below)
    "recurrent_bias",   # b_hh
    "input_bias",       # b_ih
    "bias",             # a single bias of the pre-activation
    "projection",       # W_hr of an LSTM with proj_size
    "input_map",        # an input transform before the cell (minimalRNN's W_x)
    "residual",         # a fixed residual matrix (WCRNN's R)
    "layer_weight",     # weight of a feedforward layer (feedforward_1d)
    "layer_bias",       # bias of a feedforward layer (feedforward_1d)
)
"""What a parameter does, per layer."""

FAMILY_NAMES = {"elman": "Elman RNN", "gru": "GRU", "lstm": "LSTM", "minimalrnn": "minimalRNN", "wcrnn": "WCRNN",
                "feedforward_1d": "1-D feedforward map", "custom": "custom"}
"""How each family is called in messages."""

NONLINEARITIES = ("tanh", "relu", "linear", "identity", "erf", "sigmoid", "")
"""Names of the activation of ``elman`` / ``minimalrnn`` cells ("" = not recorded)."""


@dataclass(frozen=True)
class WeightRole:
    """Parameter ``name`` plays ``role`` in ``layer``."""

    name: str
    role: str
    layer: int = 0


@dataclass(frozen=True)
class Architecture:
    """The structure of the network behind a System (filled by the adapter, read by probes).

    Attributes
    ----------
    family
        One of :data:`FAMILIES`.
    nonlinearity
        The activation φ of an ``elman`` / ``minimalrnn`` cell, one of :data:`NONLINEARITIES`.
    layers, hidden_size, input_size, proj_size, bias
        As ``nn.LSTM`` spells them (``proj_size`` 0 = none); ``bias`` whether biases exist.
    cell
        ``True`` for a one-step cell module (``nn.LSTMCell``), ``False`` for a sequence module.
    weights
        The parameters' roles (:class:`WeightRole`, vocabulary :data:`ROLES`).
    weight_law
        How the weights were drawn when the model knows it: ``gaussian`` or ``orthogonal``
        (mean-field reference cells), else "".
    activations, clip
        Per-layer activations and output clip of a ``feedforward_1d`` map.
    domain
        The interval a 1-D map is meant to act on, or ``None``.
    model
        The bundled reference model this is (``"rn"`` for RN(k, σ²)), else "".
    source
        The adapter or model that filled the record.
    """

    family: str = "custom"
    nonlinearity: str = ""
    layers: int = 1
    hidden_size: int = 0
    input_size: int = 0
    proj_size: int = 0
    bias: bool = False
    cell: bool = False
    weights: tuple[WeightRole, ...] = field(default_factory=tuple)
    weight_law: str = ""
    activations: tuple[str, ...] = ()
    clip: tuple[float, float] | None = None
    domain: tuple[float, float] | None = None
    model: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ProbeParameterError(f"Architecture: family {self.family!r} is not one of {', '.join(FAMILIES)}")
        if self.nonlinearity not in NONLINEARITIES:
            raise ProbeParameterError(
                f"Architecture: nonlinearity {self.nonlinearity!r} is not one of {', '.join(n for n in NONLINEARITIES if n)}"
            )
        bad = [w.role for w in self.weights if w.role not in ROLES]
        if bad:
            raise ProbeParameterError(f"Architecture: weight role {bad[0]!r} is not one of {', '.join(ROLES)}")
        object.__setattr__(self, "weights", tuple(self.weights))
        object.__setattr__(self, "activations", tuple(self.activations))

    def params(self, role: str, layer: int | None = 0) -> list[str]:
        """Names of the parameters playing ``role`` in ``layer`` (every layer when ``None``)."""
        if role not in ROLES:
            raise ProbeParameterError(f"Architecture.params: role {role!r} is not one of {', '.join(ROLES)}")
        return [w.name for w in self.weights if w.role == role and (layer is None or w.layer == layer)]

    def param(self, role: str, layer: int = 0) -> str | None:
        """The one parameter playing ``role`` in ``layer``, or ``None`` when there is none."""
        names = self.params(role, layer)
        return names[0] if names else None

    @property
    def family_name(self) -> str:
        """The family as people write it (``GRU``, ``Elman RNN``)."""
        return FAMILY_NAMES[self.family]

    def describe(self) -> str:
        """Short text, e.g. ``lstm(tanh), 2 layers, H=32``."""
        phi = f"({self.nonlinearity})" if self.nonlinearity else ""
        layers = f", {self.layers} layers" if self.layers != 1 else ""
        size = f", H={self.hidden_size}" if self.hidden_size else ""
        return f"{self.family}{phi}{layers}{size}"


CUSTOM = Architecture()
"""The record of a System nobody described (a plain function, a user's cell)."""
