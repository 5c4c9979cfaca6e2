"""The mutant registry fits the code: it parses, every original snippet occurs exactly once in its
file and every named test exists. (Whether the mutants are killed is run.py's job.)"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def _registry():
    spec = importlib.util.spec_from_file_location("dynprobe_mutation_registry", HERE / "registry.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building the class
    spec.loader.exec_module(module)
    return module


registry = _registry()
MUTANTS = registry.load()


def test_registry_parses_with_unique_ids():
    assert len({m.id for m in MUTANTS}) == len(MUTANTS) >= 10


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_original_snippet_and_tests_still_exist(mutant):
    registry.check(mutant)


def test_a_rotten_entry_fails_loudly(tmp_path):
    tree = registry.copy_tree(tmp_path / "repo")
    stale = registry.Mutant(id="stale", file="dynprobe/system.py", original="this text is nowhere", mutant="x",
                            tests=("tests/test_system.py",), why="-")
    with pytest.raises(registry.MutantError, match="occurs 0 times in dynprobe/system.py"):
        registry.check(stale, tree)
    ghost = registry.Mutant(**{**MUTANTS[0].__dict__, "tests": ("tests/test_lyapunov.py::test_no_such_test",)})
    with pytest.raises(registry.MutantError, match="named tests do not exist"):
        registry.check(ghost, tree)


def test_mutants_are_applied_to_a_copy_never_the_working_tree(tmp_path):
    mutant = MUTANTS[0]
    source = (registry.ROOT / mutant.file).read_text(encoding="utf-8")
    tree = registry.copy_tree(tmp_path / "repo")
    registry.apply(mutant, tree)
    mutated = (tree / mutant.file).read_text(encoding="utf-8")
    assert mutated == source.replace(mutant.original, mutant.mutant, 1) != source
    assert (registry.ROOT / mutant.file).read_text(encoding="utf-8") == source
    assert not (tree / ".git").exists()
    with pytest.raises(registry.MutantError, match="refusing to mutate the working tree"):
        registry.apply(mutant, registry.ROOT)


def test_bad_entries_are_refused(tmp_path):
    bad = tmp_path / "m.toml"
    bad.write_text('[[mutant]]\nid = "a"\nfile = "f"\noriginal = "x"\nmutant = "x"\ntests = ["t"]\nwhy = "w"\n')
    with pytest.raises(registry.MutantError, match="the mutant equals the original"):
        registry.load(bad)
    bad.write_text('[[mutant]]\nid = "a"\nfile = "f"\noriginal = "x"\nmutant = "y"\ntests = []\nwhy = "w"\n')
    with pytest.raises(registry.MutantError, match="'tests' must be a non-empty list"):
        registry.load(bad)
