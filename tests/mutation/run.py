"""Mutation run: does the suite catch the deliberate bugs of ``mutants.toml``?

For each mutant: copy the repository to a temporary directory, apply the mutant there (the
working tree is never edited), and run the tests the entry names with the copy first on
``PYTHONPATH``. A mutant is *killed* when its tests fail (or time out), *survived* when they
pass; a named test that cannot run (collection error, no such test) is an *error*. Before the
mutants, the union of their tests runs once on an unmutated copy and must pass — otherwise
"killed" would mean nothing.

Usage::

    python tests/mutation/run.py                 # every mutant; exit 0 iff all are killed
    python tests/mutation/run.py --only ID ...   # some of them
    python tests/mutation/run.py --list          # ids, files and why they matter
    python tests/mutation/run.py --check         # only check the registry against the source
    python tests/mutation/run.py --discover ID   # which tests of the default suite kill ID

Exit status: 0 all killed; 1 some survived or errored; 2 the registry does not fit the code.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from registry import Mutant, MutantError, apply, check, copy_tree, load  # noqa: E402

PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "slow or not slow"]


def _env(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tree), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _check_imports_the_copy(tree: Path) -> None:
    """The copy must shadow an installed (e.g. editable) dynprobe, or every mutant would 'survive'."""
    out = subprocess.run([sys.executable, "-c", "import dynprobe, dynprobe.plugins.lyapunov as l; print(l.__file__)"],
                         cwd=tree, env=_env(tree), capture_output=True, text=True, timeout=300)
    where = Path(out.stdout.strip() or "?").resolve()
    if out.returncode != 0 or tree.resolve() not in where.parents:
        raise SystemExit(f"mutation run: the copy's dynprobe is not the one imported ({where}; {out.stderr[-300:]}); "
                         "install dynprobe editable or not at all, without a path hook that outranks PYTHONPATH")


def _pytest(tree: Path, args: list[str], timeout: float) -> tuple[str, float, str]:
    start = time.perf_counter()
    try:
        out = subprocess.run([*PYTEST, *args], cwd=tree, env=_env(tree), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - start, ""
    return str(out.returncode), time.perf_counter() - start, out.stdout + out.stderr


def run_one(mutant: Mutant, timeout: float, keep: bool) -> tuple[str, float, str]:
    """``(verdict, seconds, output tail)`` with verdict killed / survived / error."""
    tmp = Path(tempfile.mkdtemp(prefix=f"dynprobe-mutant-{mutant.id}-"))
    try:
        tree = copy_tree(tmp / "repo")
        apply(mutant, tree)
        code, seconds, output = _pytest(tree, ["-x", *mutant.tests], timeout)
    finally:
        if keep:
            print(f"    kept: {tmp / 'repo'}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    verdict = {"0": "survived", "1": "killed", "timeout": "killed (timeout)"}.get(code, f"error (pytest exit {code})")
    return verdict, seconds, "\n".join(output.strip().splitlines()[-12:])


def baseline(mutants: list[Mutant], timeout: float) -> None:
    tests = sorted({t for m in mutants for t in m.tests})
    with tempfile.TemporaryDirectory(prefix="dynprobe-mutant-baseline-") as tmp:
        tree = copy_tree(Path(tmp) / "repo")
        _check_imports_the_copy(tree)
        code, seconds, output = _pytest(tree, tests, timeout * 2)
    if code != "0":
        raise SystemExit(f"mutation run: the named tests fail without any mutant (pytest exit {code}, {seconds:.0f} s); "
                         f"fix them first:\n{output[-2000:]}")
    print(f"baseline: {len(tests)} named tests pass unmutated ({seconds:.0f} s)")


def discover(mutant: Mutant, timeout: float) -> None:
    """Run the default suite on the mutant and list the tests that fail."""
    with tempfile.TemporaryDirectory(prefix=f"dynprobe-mutant-{mutant.id}-") as tmp:
        tree = copy_tree(Path(tmp) / "repo")
        apply(mutant, tree)
        code, seconds, output = _pytest(tree, ["-rf", "tests"], timeout * 10)
    failed = [line.split()[1] for line in output.splitlines() if line.startswith("FAILED ")]
    print(f"{mutant.id}: pytest exit {code} in {seconds:.0f} s; failing tests:")
    print("\n".join(f"  {t}" for t in failed) or "  (none: the mutant survives the default suite)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", metavar="ID", help="run only these mutants")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--check", action="store_true", help="check the registry against the source and exit")
    parser.add_argument("--discover", metavar="ID", help="run the default suite on one mutant, list the failures")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per mutant's test run (default 600)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated run of the named tests")
    parser.add_argument("--keep", action="store_true", help="keep each mutated copy (its path is printed)")
    args = parser.parse_args(argv)
    try:
        mutants = load()
        for m in mutants:
            check(m)
    except MutantError as err:
        print(f"mutation registry: {err}", file=sys.stderr)
        return 2
    if args.only or args.discover:
        wanted = set(args.only or [args.discover])
        unknown = wanted - {m.id for m in mutants}
        if unknown:
            print(f"unknown mutant ids {sorted(unknown)}; known: {', '.join(m.id for m in mutants)}", file=sys.stderr)
            return 2
        mutants = [m for m in mutants if m.id in wanted]
    if args.list or args.check:
        for m in mutants:
            print(f"{m.id:40s} {m.file:45s} {m.why}" if args.list else f"ok  {m.id}")
        return 0
    if args.discover:
        discover(mutants[0], args.timeout)
        return 0
    if not args.no_baseline:
        baseline(mutants, args.timeout)
    results = []
    for m in mutants:
        verdict, seconds, tail = run_one(m, args.timeout, args.keep)
        results.append((m, verdict))
        print(f"{verdict:18s} {m.id:40s} {seconds:6.1f} s  {m.file}", flush=True)
        if not verdict.startswith("killed"):
            print("    " + tail.replace("\n", "\n    "), flush=True)
    killed = sum(v.startswith("killed") for _, v in results)
    survived = [m.id for m, v in results if v == "survived"]
    errors = [m.id for m, v in results if v.startswith("error")]
    print(f"\n{killed} of {len(results)} mutants killed" + (f"; survived: {', '.join(survived)}" if survived else "")
          + (f"; errors: {', '.join(errors)}" if errors else ""))
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
