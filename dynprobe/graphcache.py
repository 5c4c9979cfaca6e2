"""Traced tangent programs cached by architecture and shape, in memory and on disk.

Tracing a tangent step costs little once ``torch.func`` is loaded, but the first ``vmap``/``jvp``
of a process imports ``torch._dynamo`` (seconds of CPU). A :class:`~dynprobe.program.Program`
is plain data, so it is kept per process and written to disk; a fresh process then loads it
and never touches ``torch.func`` for a plain (non-ensemble) System.

The key is a sha256 over everything the traced computation depends on: the torch and Python
versions, the source of dynprobe's tracing modules, dtype, device type, the shapes of state,
tangents, input and parameters, and a digest of the step function — its code (recursively:
constants, nested code, the module-level functions it calls), its closure values (ints,
strings, dataclasses, tensors by value, modules by class source and state) — of the drive
and of the readout. Anything that cannot be digested deterministically (an arbitrary object)
makes the System uncacheable on disk. A loaded program is never trusted: :class:`TangentMap`
checks it against a forward-mode AD evaluation on its first inputs and retraces on any
difference. ``DYNPROBE_NO_CACHE=1`` turns the disk cache off; ``DYNPROBE_CACHE_DIR`` moves it
(default ``$XDG_CACHE_HOME/dynprobe`` or ``~/.cache/dynprobe``).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import inspect
import os
import sys
import tempfile
import types
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from .program import Program, ProgramError

__all__ = ["cache_dir", "fingerprint", "load", "store", "MEMORY_ENTRIES"]

MEMORY_ENTRIES = 64
_memory: OrderedDict[str, Program] = OrderedDict()
_SOURCES = ("tracing.py", "program.py", "linearize.py", "graphcache.py", "system.py", "drives.py")


class _Undigestable(Exception):
    pass


@functools.lru_cache(maxsize=1)
def _code_version() -> str:
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256(f"{torch.__version__}|{sys.version_info[:3]}".encode())
    for name in _SOURCES:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()


@functools.lru_cache(maxsize=256)
def _file_hash(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return "?"


def _digest(obj: Any, out: Any, seen: set[int], depth: int = 0) -> None:
    """Feed a deterministic description of ``obj`` into the hash ``out`` (or raise)."""
    if depth > 12:
        raise _Undigestable("too deep")
    put = out.update
    if obj is None or obj is Ellipsis or isinstance(obj, (bool, int, float, complex, str, bytes, range)):
        put(f"{type(obj).__name__}:{obj!r};".encode())
        return
    if isinstance(obj, slice):
        _digest((obj.start, obj.stop, obj.step), out, seen, depth + 1)
        return
    if isinstance(obj, (torch.dtype, torch.device, torch.layout, enum.Enum)):
        put(f"{type(obj).__name__}:{obj};".encode())
        return
    if id(obj) in seen:
        put(b"<cycle>")
        return
    seen = seen | {id(obj)}
    if isinstance(obj, torch.Tensor):
        t = obj.detach().to("cpu").contiguous()
        put(f"tensor:{list(t.shape)}:{t.dtype};".encode())
        flat = torch.empty(t.numel(), dtype=t.dtype).copy_(t.reshape(-1))  # fresh strides: a size-1 dim may have 0
        put(flat.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, (list, tuple, frozenset, set)):
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        put(f"{type(obj).__name__}[{len(items)}](".encode())
        for item in items:
            _digest(item, out, seen, depth + 1)
        put(b")")
    elif isinstance(obj, dict):
        put(f"dict[{len(obj)}](".encode())
        for key in sorted(obj, key=repr):
            _digest(key, out, seen, depth + 1)
            _digest(obj[key], out, seen, depth + 1)
        put(b")")
    elif isinstance(obj, types.ModuleType):
        put(f"module:{obj.__name__};".encode())
    elif isinstance(obj, types.CodeType):
        put(f"code:{obj.co_name}:{obj.co_argcount}:{obj.co_names}:{obj.co_varnames}:{obj.co_freevars};".encode())
        put(obj.co_code)
        for const in obj.co_consts:
            _digest(const, out, seen, depth + 1)
    elif isinstance(obj, functools.partial):
        _digest((obj.func, obj.args, obj.keywords), out, seen, depth + 1)
    elif isinstance(obj, (types.FunctionType, types.MethodType)):
        fn = obj.__func__ if isinstance(obj, types.MethodType) else obj
        if isinstance(obj, types.MethodType):
            _digest(obj.__self__, out, seen, depth + 1)
        put(f"function:{fn.__module__}.{fn.__qualname__};".encode())
        _digest(fn.__code__, out, seen, depth + 1)
        _digest(fn.__defaults__, out, seen, depth + 1)
        _digest(fn.__kwdefaults__, out, seen, depth + 1)
        for cell in fn.__closure__ or ():
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                value = None
            _digest(value, out, seen, depth + 1)
        for name in _global_names(fn.__code__):  # module-level functions it calls
            value = fn.__globals__.get(name)
            if isinstance(value, (types.FunctionType, types.CodeType)) or dataclasses.is_dataclass(value):
                _digest(value, out, seen, depth + 1)
    elif isinstance(obj, (types.BuiltinFunctionType, torch._ops.OpOverload, torch._ops.OpOverloadPacket)):
        put(f"builtin:{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', obj)};".encode())
    elif isinstance(obj, type):
        put(f"class:{obj.__module__}.{obj.__qualname__}:{_file_hash(inspect.getfile(obj)) if _has_file(obj) else ''};".encode())
    elif isinstance(obj, torch.nn.Module):
        _digest(type(obj), out, seen, depth + 1)
        put(repr(obj).encode())
        for name, value in [*obj.named_parameters(), *obj.named_buffers()]:
            _digest((name, value), out, seen, depth + 1)
    elif dataclasses.is_dataclass(obj):
        _digest(type(obj), out, seen, depth + 1)
        for f in dataclasses.fields(obj):
            _digest((f.name, getattr(obj, f.name)), out, seen, depth + 1)
    elif type(obj).__module__.startswith("dynprobe") and hasattr(obj, "__dict__"):
        _digest(type(obj), out, seen, depth + 1)
        _digest(vars(obj), out, seen, depth + 1)
    else:
        raise _Undigestable(type(obj).__qualname__)


def _has_file(cls: type) -> bool:
    try:
        inspect.getfile(cls)
    except TypeError:
        return False
    return True


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def fingerprint(parts: dict[str, Any]) -> str | None:
    """The cache key of a traced computation described by ``parts`` (functions, shapes, ...),
    or ``None`` when some part cannot be digested deterministically."""
    out = hashlib.sha256(_code_version().encode())
    try:
        _digest(parts, out, set())
    except _Undigestable:
        return None
    return out.hexdigest()


def cache_dir() -> Path | None:
    """Where programs are stored, or ``None`` when the disk cache is off."""
    if os.environ.get("DYNPROBE_NO_CACHE", "") not in ("", "0"):
        return None
    explicit = os.environ.get("DYNPROBE_CACHE_DIR")
    if explicit:
        return Path(explicit) / "programs"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dynprobe" / "programs"


def load(key: str) -> Program | None:
    """The program stored under ``key`` (memory first, then disk), or ``None``."""
    program = _memory.get(key)
    if program is not None:
        _memory.move_to_end(key)
        return program
    root = cache_dir()
    if root is None:
        return None
    path = root / key[:2] / f"{key}.json"
    try:
        text = path.read_text()
        tensors = path.with_suffix(".pt")
        constants = torch.load(tensors, weights_only=True) if tensors.exists() else []
        program = Program.from_json(text, list(constants))
    except (OSError, ProgramError, RuntimeError, EOFError, ValueError):
        return None
    _remember(key, program)
    return program


def store(key: str, program: Program) -> None:
    """Keep ``program`` in memory and, when the disk cache is on, on disk (atomically; a
    failure to write only costs a retrace later)."""
    _remember(key, program)
    root = cache_dir()
    if root is None:
        return
    folder = root / key[:2]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if program.constants:
            constants = [program.constants[i].cpu() for i in sorted(program.constants)]
            _atomic(folder / f"{key}.pt", lambda fh: torch.save(constants, fh))
        _atomic(folder / f"{key}.json", lambda fh: fh.write(program.to_json().encode()))
    except (OSError, ProgramError, RuntimeError):
        return


def _atomic(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _remember(key: str, program: Program) -> None:
    _memory[key] = program
    _memory.move_to_end(key)
    while len(_memory) > MEMORY_ENTRIES:
        _memory.popitem(last=False)


def forget() -> None:
    """Empty the in-memory cache (tests use it to simulate a fresh process)."""
    _memory.clear()
