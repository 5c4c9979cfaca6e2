"""The mutant registry (``mutants.toml``): loading, validation, and applying a mutant to a copy.

A mutant is a deliberate bug in what users read — a standard error, a verdict's threshold, a
flag — with the tests that must catch it. ``run.py`` applies each one to a temporary copy of
the repository and runs its tests; ``test_mutants.py`` (in the default suite) checks that the
registry parses and that every original snippet and every named test still exists, so an entry
cannot rot silently when the code it targets changes.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = Path(__file__).with_name("mutants.toml")
FIELDS = {"id": str, "file": str, "original": str, "mutant": str, "tests": list, "why": str}
OPTIONAL = {"owner": str}
COPY_IGNORE = (".git", ".venv", "__pycache__", "*.egg-info", ".hypothesis", ".pytest_cache", ".benchmarks",
               "build", "dist", "*.zarr", "*.nc")

__all__ = ["Mutant", "MutantError", "load", "check", "copy_tree", "apply", "ROOT", "REGISTRY"]


class MutantError(Exception):
    """A registry entry that no longer fits the code (or is malformed): fix the entry."""


@dataclass(frozen=True)
class Mutant:
    """One deliberate bug: replace ``original`` (found exactly once in ``file``) by ``mutant``."""

    id: str
    file: str
    original: str
    mutant: str
    tests: tuple[str, ...]
    why: str
    owner: str = ""


def load(path: Path = REGISTRY) -> list[Mutant]:
    """All mutants of the registry, validated for shape (not yet against the source)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise MutantError(f"{path}: not valid TOML: {err}") from err
    entries = data.get("mutant")
    if not isinstance(entries, list) or not entries:
        raise MutantError(f"{path}: no [[mutant]] entries")
    out, seen = [], set()
    for i, entry in enumerate(entries):
        where = f"{path.name} entry {i + 1} ({entry.get('id', '?')!r})"
        unknown = set(entry) - set(FIELDS) - set(OPTIONAL)
        if unknown:
            raise MutantError(f"{where}: unknown fields {sorted(unknown)}; fields are {sorted({**FIELDS, **OPTIONAL})}")
        for name, kind in FIELDS.items():
            if not isinstance(entry.get(name), kind) or not entry[name]:
                raise MutantError(f"{where}: field {name!r} must be a non-empty {kind.__name__}")
        if not all(isinstance(t, str) and t for t in entry["tests"]):
            raise MutantError(f"{where}: 'tests' must list pytest node ids or files as strings")
        if entry["id"] in seen:
            raise MutantError(f"{where}: duplicate id {entry['id']!r}")
        if entry["original"] == entry["mutant"]:
            raise MutantError(f"{where}: the mutant equals the original")
        seen.add(entry["id"])
        out.append(Mutant(**{**entry, "tests": tuple(entry["tests"])}))
    return out


def _test_exists(root: Path, node: str) -> bool:
    """``tests/x.py`` or ``tests/x.py::test_name[param]`` (the function must be defined there)."""
    file, _, name = node.partition("::")
    path = root / file
    if not path.is_file():
        return False
    if not name:
        return True
    func = re.sub(r"\[.*\]$", "", name.split("::")[-1])
    return re.search(rf"^\s*(async\s+)?def {re.escape(func)}\(", path.read_text(encoding="utf-8"), re.M) is not None


def check(mutant: Mutant, root: Path = ROOT) -> None:
    """Raise :class:`MutantError` unless the file holds ``original`` exactly once and every named
    test exists — the loud failure that keeps an entry from rotting when the code moves on."""
    path = root / mutant.file
    if not path.is_file():
        raise MutantError(f"mutant {mutant.id!r}: file {mutant.file} does not exist; update the entry")
    count = path.read_text(encoding="utf-8").count(mutant.original)
    if count != 1:
        raise MutantError(
            f"mutant {mutant.id!r}: its original snippet occurs {count} times in {mutant.file} (needs exactly 1): "
            f"{mutant.original!r}; the code changed — update the entry (or make the snippet unique)"
        )
    missing = [t for t in mutant.tests if not _test_exists(root, t)]
    if missing:
        raise MutantError(f"mutant {mutant.id!r}: named tests do not exist: {missing}; update the entry")


def copy_tree(dest: Path, root: Path = ROOT) -> Path:
    """A copy of the repository (sources, tests, examples, pyproject) under ``dest``."""
    shutil.copytree(root, dest, ignore=shutil.ignore_patterns(*COPY_IGNORE), symlinks=True)
    return dest


def apply(mutant: Mutant, tree: Path) -> None:
    """Apply ``mutant`` inside the copy ``tree`` (never the working tree)."""
    if tree.resolve() == ROOT.resolve():
        raise MutantError("refusing to mutate the working tree; apply mutants to a copy (copy_tree)")
    check(mutant, tree)
    path = tree / mutant.file
    text = path.read_text(encoding="utf-8")
    path.unlink()  # a fresh file, never a write through a link into the original
    path.write_text(text.replace(mutant.original, mutant.mutant, 1), encoding="utf-8")
