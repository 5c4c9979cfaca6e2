"""A traced ATen graph as plain data, compiled to a lean Python function.

Why: an ``fx.GraphModule`` runs every op through ``OpOverload.__call__`` and module call
machinery — at small sizes (k ≪ N, or N of a few units) that per-op overhead is most of a
tangent step. A :class:`Program` holds the same computation as a list of instructions
(an op name and its arguments) and

* compiles it to one Python function that calls each op through the cheapest equivalent entry
  point (``torch.mm`` rather than ``torch.ops.aten.mm.default``);
* hoists *loop-invariant* instructions — those that depend only on inputs declared static
  (the parameters, and the input u of a time-invariant drive) — into a prologue evaluated once
  (:meth:`Program.compile` then :meth:`Compiled.bind`): a transposed weight, ``W_ih @ u + b``;
* round-trips through JSON with only ``aten`` ops and literal arguments (the on-disk cache of
  :mod:`dynprobe.graphcache` stores nothing that could run other code).

References
----------
The loop-invariant code motion and dead-code passes are the textbook ones (Aho, Lam, Sethi &
Ullman, *Compilers*, §9.5); ``torch.fx``'s graph model is what is translated here.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx as fx

__all__ = ["Program", "Compiled", "ProgramError"]


class ProgramError(ValueError):
    """A graph holds something a Program cannot represent (then the fx graph is used as is)."""


@dataclass(frozen=True)
class Ref:
    """A reference to the value with this id (an input, a constant or an instruction's result)."""

    id: int


@dataclass(frozen=True)
class Instr:
    out: int
    op: str  # "aten.mm.default", or "getitem"
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]
    shape: tuple[int, ...] | None = None  # of the result, when it is one tensor (from tracing)


# public torch functions with exactly the overload's signature and semantics (cheaper to call)
_FAST: dict[str, Callable[..., Any]] = {
    "aten.mm.default": torch.mm,
    "aten.bmm.default": torch.bmm,
    "aten.addmm.default": torch.addmm,
    "aten.add.Tensor": torch.add,
    "aten.sub.Tensor": torch.sub,
    "aten.mul.Tensor": torch.mul,
    "aten.div.Tensor": torch.div,
    "aten.neg.default": torch.neg,
    "aten.tanh.default": torch.tanh,
    "aten.sigmoid.default": torch.sigmoid,
    "aten.relu.default": torch.relu,
    "aten.exp.default": torch.exp,
    "aten.cat.default": torch.cat,
    "aten.t.default": torch.t,
    "aten.permute.default": torch.permute,
    "aten.reshape.default": torch.reshape,
    "aten.view.default": torch.Tensor.view,
    "aten.where.self": torch.where,
}
_IMPURE = ("rand", "normal", "bernoulli", "uniform", "dropout", "multinomial", "exponential", "geometric", "cauchy")
_NAMED = {"dtype": torch.dtype, "device": torch.device, "layout": torch.layout, "memory_format": torch.memory_format}


def _resolve(op: str) -> Callable[..., Any]:
    """The callable for an op name; only ``aten`` overloads (and ``getitem``) resolve."""
    if op == "getitem":
        return operator.getitem
    if op in _FAST:
        return _FAST[op]
    parts = op.split(".")
    if len(parts) != 3 or parts[0] != "aten" or not all(p.isidentifier() for p in parts):
        raise ProgramError(f"not an aten overload: {op!r}")
    try:
        overload = getattr(getattr(torch.ops.aten, parts[1]), parts[2])
    except (AttributeError, RuntimeError) as err:
        raise ProgramError(f"unknown op {op!r}") from err
    return getattr(overload, "_op", overload)


def _literal_ok(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_literal_ok(v) or isinstance(v, Ref) for v in value)
    return isinstance(value, tuple(_NAMED.values()))


class Program:
    """Instructions over numbered values: inputs ``0 .. n_inputs-1``, then constants, then
    instruction results. ``outputs`` is a tuple of :class:`Ref` (or literals)."""

    def __init__(self, n_inputs: int, constants: dict[int, torch.Tensor], body: list[Instr], outputs: tuple[Any, ...]):
        self.n_inputs = n_inputs
        self.constants = constants
        self.body = body
        self.outputs = outputs
        self.verified = False  # set by whoever checked it against an independent evaluation
        self._compiled: dict[tuple[int, ...], Compiled] = {}

    # ------------------------------------------------------------------ from fx
    @classmethod
    def from_graph(cls, gm: fx.GraphModule) -> Program:
        """Translate a traced graph; raise :class:`ProgramError` for anything but aten calls."""
        ids: dict[fx.Node, int] = {}
        constants: dict[int, torch.Tensor] = {}
        body: list[Instr] = []
        placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
        for i, node in enumerate(placeholders):
            ids[node] = i
        nxt = len(placeholders)

        def enc(a: Any) -> Any:
            if isinstance(a, fx.Node):
                return Ref(ids[a])
            if isinstance(a, (list, tuple)):
                return tuple(enc(x) for x in a) if isinstance(a, tuple) else [enc(x) for x in a]
            if not _literal_ok(a):
                raise ProgramError(f"argument of type {type(a).__name__} cannot be stored")
            return a

        outputs: tuple[Any, ...] = ()
        for node in gm.graph.nodes:
            if node.op == "placeholder":
                continue
            if node.op == "get_attr":
                value = operator.attrgetter(node.target)(gm)
                if not isinstance(value, torch.Tensor):
                    raise ProgramError(f"constant {node.target!r} is not a tensor")
                ids[node] = nxt
                constants[nxt] = value.detach()
                nxt += 1
            elif node.op == "call_function":
                if node.target is operator.getitem:
                    name = "getitem"
                elif isinstance(node.target, torch._ops.OpOverload) and node.target.namespace == "aten":
                    name = str(node.target)
                else:
                    raise ProgramError(f"call of {node.target!r} is not an aten op")
                ids[node] = nxt
                val = node.meta.get("val")
                shape = tuple(int(d) for d in val.shape) if isinstance(val, torch.Tensor) else None
                body.append(Instr(nxt, name, tuple(enc(a) for a in node.args),
                                  tuple((k, enc(v)) for k, v in node.kwargs.items()), shape))
                nxt += 1
            elif node.op == "output":
                outputs = tuple(enc(a) for a in node.args[0]) if isinstance(node.args[0], (list, tuple)) else (enc(node.args[0]),)
            else:
                raise ProgramError(f"graph node kind {node.op!r} is not supported")
        program = cls(len(placeholders), constants, body, outputs)
        program.validate()
        return program

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> str:
        """The instructions as JSON (constants are stored separately: :attr:`constants`)."""

        def enc(a: Any) -> Any:
            if isinstance(a, Ref):
                return {"ref": a.id}
            if isinstance(a, (list, tuple)):
                return {"tuple" if isinstance(a, tuple) else "list": [enc(x) for x in a]}
            if isinstance(a, float) and not math.isfinite(a):
                return {"float": repr(a)}
            for kind, typ in _NAMED.items():
                if isinstance(a, typ):
                    return {kind: str(a).removeprefix("torch.")}
            return a

        return json.dumps({
            "n_inputs": self.n_inputs,
            "constants": sorted(self.constants),
            "body": [[i.out, i.op, [enc(a) for a in i.args], [[k, enc(v)] for k, v in i.kwargs],
                      None if i.shape is None else list(i.shape)] for i in self.body],
            "outputs": [enc(o) for o in self.outputs],
        })

    @classmethod
    def from_json(cls, text: str, constants: Sequence[torch.Tensor]) -> Program:
        """Rebuild a Program; raise :class:`ProgramError` on anything malformed."""
        try:
            data = json.loads(text)

            def dec(a: Any) -> Any:
                if isinstance(a, dict):
                    ((kind, val),) = a.items()
                    if kind == "ref":
                        return Ref(int(val))
                    if kind in ("list", "tuple"):
                        items = [dec(x) for x in val]
                        return tuple(items) if kind == "tuple" else items
                    if kind == "float":
                        return float(val)
                    if kind == "dtype":
                        return getattr(torch, val) if isinstance(getattr(torch, val, None), torch.dtype) else _bad(val)
                    if kind == "device":
                        return torch.device(val)
                    if kind in ("layout", "memory_format"):
                        obj = getattr(torch, val, None)
                        return obj if isinstance(obj, _NAMED[kind]) else _bad(val)
                    return _bad(kind)
                if a is None or isinstance(a, (bool, int, float, str)):
                    return a
                return _bad(a)

            ids = [int(i) for i in data["constants"]]
            if len(ids) != len(constants):
                raise ProgramError("constants do not match the program")
            body = [Instr(int(out), str(op), tuple(dec(a) for a in args), tuple((str(k), dec(v)) for k, v in kwargs),
                          None if shape is None else tuple(int(d) for d in shape))
                    for out, op, args, kwargs, shape in data["body"]]
            program = cls(int(data["n_inputs"]), dict(zip(ids, constants)), body, tuple(dec(o) for o in data["outputs"]))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ProgramError(f"malformed program: {err}") from err
        program.validate()
        return program

    def validate(self) -> None:
        """Raise :class:`ProgramError` unless every op resolves and every value is defined once before use."""
        for ins in self.body:
            _resolve(ins.op)
        self.compile(())

    # ------------------------------------------------------------------ compile
    def compile(self, static: Sequence[int]) -> Compiled:
        """A :class:`Compiled` program whose inputs at positions ``static`` are fixed by
        :meth:`Compiled.bind`; instructions depending only on them (and constants) are hoisted.
        Memoized per ``static``."""
        key = tuple(static)
        if key not in self._compiled:
            self._compiled[key] = self._compile(key)
        return self._compiled[key]

    def _compile(self, static: tuple[int, ...]) -> Compiled:
        static_ids = set(static) | set(self.constants)
        defined = set(range(self.n_inputs)) | set(self.constants)
        hoisted: list[Instr] = []
        loop: list[Instr] = []
        for ins in self.body:
            refs = _instr_refs(ins)
            if not refs <= defined:
                raise ProgramError(f"instruction {ins.out} uses undefined values {sorted(refs - defined)}")
            if ins.out in defined:
                raise ProgramError(f"value {ins.out} is defined twice")
            defined.add(ins.out)
            if refs <= static_ids and not any(word in ins.op for word in _IMPURE):
                static_ids.add(ins.out)
                hoisted.append(ins)
            else:
                loop.append(ins)
        if not _refs(self.outputs) <= defined:
            raise ProgramError("outputs use undefined values")
        dynamic = [i for i in range(self.n_inputs) if i not in set(static)]
        needed = _refs(self.outputs).union(*(_instr_refs(i) for i in loop))
        carried = sorted(v for v in needed if v in static_ids and v not in dynamic)
        prologue = _emit("prologue", [*static, *sorted(self.constants)], hoisted, tuple(Ref(v) for v in carried))
        return Compiled(self, list(static), dynamic, carried, prologue, loop)


def _instr_refs(ins: Instr) -> set[int]:
    return _refs(ins.args) | _refs(tuple(v for _, v in ins.kwargs))


def _drop_zero_terms(loop: list[Instr], outputs: tuple[Any, ...], zeros: set[int]) -> tuple[list[Instr], tuple[Any, ...]]:
    """``x + 0``, ``0 + x`` and ``x - 0`` → ``x`` where the result has x's shape (``0`` a hoisted
    value that is exactly zero for this binding: a zero input, a bias-free term)."""
    alias: dict[int, Ref] = {}

    def sub(a: Any) -> Any:
        if isinstance(a, Ref):
            return alias.get(a.id, a)
        if isinstance(a, list):
            return [sub(x) for x in a]
        if isinstance(a, tuple):
            return tuple(sub(x) for x in a)
        return a

    shapes = {i.out: i.shape for i in loop}
    kept: list[Instr] = []
    for ins in loop:
        ins = Instr(ins.out, ins.op, sub(ins.args), tuple((k, sub(v)) for k, v in ins.kwargs), ins.shape)
        if ins.op in ("aten.add.Tensor", "aten.sub.Tensor") and len(ins.args) == 2 and dict(ins.kwargs).get("alpha", 1) == 1:
            a, b = ins.args
            pairs = [(a, b)] if ins.op == "aten.sub.Tensor" else [(a, b), (b, a)]
            for keep, drop in pairs:
                if (isinstance(drop, Ref) and drop.id in zeros and isinstance(keep, Ref)
                        and ins.shape is not None and shapes.get(keep.id) == ins.shape):
                    alias[ins.out] = keep
                    break
            if ins.out in alias:
                continue
        kept.append(ins)
    return kept, sub(outputs)


def _bad(what: Any) -> Any:
    raise ProgramError(f"unexpected value {what!r}")


def _refs(args: Any) -> set[int]:
    out: set[int] = set()
    stack = [args]
    while stack:
        a = stack.pop()
        if isinstance(a, Ref):
            out.add(a.id)
        elif isinstance(a, (list, tuple)):
            stack.extend(a)
    return out


def _source(a: Any) -> str:
    if isinstance(a, Ref):
        return f"v{a.id}"
    if isinstance(a, list):
        return "[" + ", ".join(_source(x) for x in a) + "]"
    if isinstance(a, tuple):
        return "(" + "".join(_source(x) + ", " for x in a) + ")"
    if isinstance(a, float) and not math.isfinite(a):
        return f"float({repr(a)!r})"
    if a is None or isinstance(a, (bool, int, float, str)):
        return repr(a)
    for kind, typ in _NAMED.items():
        if isinstance(a, typ):
            return f"_{kind}_{_name(a)}"
    raise ProgramError(f"cannot emit {a!r}")


def _name(obj: Any) -> str:
    return "".join(c if c.isalnum() else "_" for c in str(obj).removeprefix("torch."))


def _mm_transposed(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` computed as ``(bᵀ aᵀ)ᵀ``: the same products, the GEMM a BLAS runs fastest when
    ``a`` has few rows (see :func:`_wide_and_short`); the result is a transposed view."""
    return torch.mm(b.t(), a.t()).t()


def _wide_and_short(ins: Instr, shapes: dict[int, tuple[int, ...] | None]) -> bool:
    """Whether the product ``[m, kk] @ [kk, n]`` is a few-row GEMM (4 <= m <= 32 <= 256 <= kk, n):
    the tangent GEMM of k ≪ N columns in vmap's layout. Measured with one thread on this
    project's CPU (MKL), C = A B takes 1.1–1.4× as long as (Bᵀ Aᵀ)ᵀ there, and no longer
    elsewhere (``tests/benchmarks/test_bench_qr.py::test_gemm_orientation``)."""
    a = ins.args[0] if ins.args else None
    k_shape = shapes.get(a.id) if isinstance(a, Ref) else None
    if ins.shape is None or len(ins.shape) != 2 or k_shape is None or len(k_shape) != 2:
        return False
    (m, n), kk = ins.shape, k_shape[1]
    return 4 <= m <= 32 and n >= 256 and kk >= 256


def _emit(name: str, params: list[int], body: list[Instr], outputs: tuple[Any, ...], *,
          closure: Sequence[int] | None = None, extra_args: int = 0) -> Callable[..., Any]:
    """Python source for ``name(*params) -> outputs`` over ``body``, compiled with the ops bound.

    With ``closure`` (a list of value ids, possibly empty), returns a factory
    ``make(*closure_values) -> name`` instead, so the hot function reads those values from its
    closure rather than taking them as arguments."""
    env: dict[str, Any] = {"float": float}
    args = [f"v{p}" for p in params] + [f"_x{i}" for i in range(extra_args)]
    indent = "        " if closure is not None else "    "
    lines = [f"def make({', '.join(f'v{c}' for c in closure)}):"] if closure is not None else []
    lines.append(f"{indent[:-4]}def {name}({', '.join(args)}):")

    def named(a: Any) -> None:
        if isinstance(a, (list, tuple)):
            for x in a:
                named(x)
        else:
            for kind, typ in _NAMED.items():
                if isinstance(a, typ):
                    env[f"_{kind}_{_name(a)}"] = a

    shapes = {i.out: i.shape for i in body}
    for ins in body:
        fn_name = f"op_{_name(ins.op)}"
        env[fn_name] = _resolve(ins.op)
        if ins.op == "aten.mm.default" and _wide_and_short(ins, shapes):
            fn_name = "op_mm_transposed"
            env[fn_name] = _mm_transposed
        named(ins.args)
        named(tuple(v for _, v in ins.kwargs))
        call = ", ".join([_source(a) for a in ins.args] + [f"{k}={_source(v)}" for k, v in ins.kwargs])
        lines.append(f"{indent}v{ins.out} = {fn_name}({call})")
    lines.append(f"{indent}return ({''.join(_source(o) + ', ' for o in outputs)})")
    if closure is not None:
        lines.append(f"    return {name}")
    code = compile("\n".join(lines), f"<dynprobe program {name}>", "exec")
    exec(code, env)  # source generated above from validated instructions
    return env["make" if closure is not None else name]


class Compiled:
    """A compiled :class:`Program`: :meth:`bind` the static inputs, call with the others."""

    def __init__(self, program: Program, static: list[int], dynamic: list[int], carried: list[int],
                 prologue: Callable[..., tuple[Any, ...]], loop: list[Instr]) -> None:
        self.program = program
        self.static = static
        self.dynamic = dynamic
        self.carried = carried
        self.loop = loop
        self._prologue = prologue
        self._factories: dict[frozenset[int], tuple[Callable[..., Any], tuple[str, ...]]] = {}

    def bind(self, static_values: Sequence[Any], *, extra_args: int = 0) -> Callable[..., tuple[Any, ...]]:
        """Evaluate the hoisted instructions once; return ``f(*dynamic_inputs, *extra) -> outputs``
        (``extra_args`` trailing arguments are accepted and ignored, e.g. a time index)."""
        if len(static_values) != len(self.static):
            raise ProgramError(f"bind needs {len(self.static)} static values, got {len(static_values)}")
        constants = [self.program.constants[i] for i in sorted(self.program.constants)]
        with torch.no_grad():
            carried = self._prologue(*static_values, *constants)
        zeros = frozenset(i for i, v in zip(self.carried, carried)
                          if isinstance(v, torch.Tensor) and v.numel() and v.is_floating_point() and not bool(v.any()))
        key = zeros | {-1 - extra_args}
        if key not in self._factories:
            loop, outputs = _drop_zero_terms(self.loop, self.program.outputs, set(zeros))
            factory = _emit("run", self.dynamic, loop, outputs, closure=self.carried, extra_args=extra_args)
            self._factories[key] = (factory, tuple(ins.op for ins in loop))
        factory, ops = self._factories[key]
        run = factory(*carried)
        run.ops = ops  # what each call executes, for inspection
        return run
