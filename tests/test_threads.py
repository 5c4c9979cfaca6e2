"""The thread policy: explicit choices win, small systems and busy machines get one thread,
the choice is applied per run, restored after it, and recorded in the result."""

from __future__ import annotations

import math

import pytest
import torch
from systems import logistic_system

import dynprobe
from dynprobe import threads
from dynprobe.errors import ProbeParameterError


@pytest.fixture
def untouched(monkeypatch):
    """torch's thread setting as dynprobe found it, no explicit choice, a 4-core machine."""
    for name in ("DYNPROBE_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "_explicit", None)
    monkeypatch.setattr(threads, "_cores", lambda: 4)
    monkeypatch.setattr(threads, "_TORCH_DEFAULT", 4)
    monkeypatch.setattr(threads, "_own_load", lambda: 0.0)  # this test process counted as idle
    saved = torch.get_num_threads()
    torch.set_num_threads(4)
    yield monkeypatch
    torch.set_num_threads(saved)


def _load(monkeypatch, value: float) -> None:
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (value, value, value))


def test_small_systems_get_one_thread_whatever_the_load(untouched):
    _load(untouched, 0.0)
    assert threads.choose(threads.PARALLEL_MIN_N - 1)[0] == 1


@pytest.mark.parametrize(("load", "expected"), [(0.1, 4), (1.2, 3), (2.6, 1), (9.0, 1)])
def test_large_systems_get_the_idle_cores(untouched, load, expected):
    _load(untouched, load)
    n, reason = threads.choose(2048)
    assert n == expected and "load" in reason


def test_this_process_own_load_is_not_counted_as_another_process(untouched):
    # load 2.0 on 4 cores, of which this process's own busy thread is 1.0: 3 cores are free
    _load(untouched, 2.0)
    untouched.setattr(threads, "_own_load", lambda: 1.0)
    n, reason = threads.choose(2048)
    assert n == 3 and "load of other processes 1.0" in reason


def test_own_load_follows_this_process_cpu_use(monkeypatch):
    # the kernel's 1-minute average of busy threads: one busy thread for a minute gives 1 - 1/e
    clock = {"wall": 0.0, "cpu": 0.0}
    monkeypatch.setattr(threads.time, "monotonic", lambda: clock["wall"])
    monkeypatch.setattr(threads.time, "process_time", lambda: clock["cpu"])
    monkeypatch.setattr(threads, "_own", {"wall": 0.0, "cpu": 0.0, "ema": 0.0})
    clock.update(wall=60.0, cpu=60.0)
    assert threads._own_load() == pytest.approx(1 - math.exp(-1), rel=1e-12)
    clock.update(wall=660.0, cpu=60.0)  # ten idle minutes: the share decays away
    assert threads._own_load() == pytest.approx((1 - math.exp(-1)) * math.exp(-10), rel=1e-12)


def test_explicit_choices_win(untouched):
    _load(untouched, 0.0)
    untouched.setenv("OMP_NUM_THREADS", "3")
    assert threads.choose(8) == (3, "OMP_NUM_THREADS")
    untouched.setenv("DYNPROBE_THREADS", "2")
    assert threads.choose(8) == (2, "DYNPROBE_THREADS")
    dynprobe.set_threads(3)
    assert threads.choose(4096) == (3, "set_threads")
    dynprobe.set_threads(None)
    untouched.delenv("DYNPROBE_THREADS")
    untouched.delenv("OMP_NUM_THREADS")
    torch.set_num_threads(2)  # the user's own torch setting, made after import
    assert threads.choose(4096) == (2, "torch.set_num_threads")


def test_a_run_applies_the_choice_records_it_and_restores_the_callers(untouched):
    _load(untouched, 0.0)
    seen = []
    system = dynprobe.System.from_step(lambda h, u, p: seen.append(torch.get_num_threads()) or 3.9 * h * (1 - h),
                                       state_dim=1, dtype=torch.float64,
                                       init=dynprobe.InitialState(low=0.2, high=0.8))
    ds = dynprobe.run("lyapunov", system, steps=20, burn_in=2)
    assert set(seen) == {1} and ds.attrs["threads"] == 1  # N = 1: one thread inside the run
    assert torch.get_num_threads() == 4  # the caller's setting is back


def test_nested_runs_keep_the_outer_choice(untouched):
    with threads.applied(1) as outer:
        assert outer == 1 == torch.get_num_threads()
        torch.set_num_threads(2)
        with threads.applied(4096) as inner:
            assert inner == 2
    assert torch.get_num_threads() == 4


def test_bad_thread_counts_are_one_line_errors():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ProbeParameterError, match="threads must be an int >= 1"):
            dynprobe.set_threads(bad)


def test_every_result_says_how_many_threads_it_used():
    ds = dynprobe.run("lyapunov", logistic_system(3.9), steps=50)
    assert ds.attrs["threads"] == torch.get_num_threads() >= 1


def test_a_checkpoint_analysed_in_this_process_leaves_the_callers_threads_alone(untouched, tmp_path):
    """batch(workers=0) runs analyse_checkpoint in the user's process: one thread inside, the
    user's setting afterwards (set_threads(1) there used to stick for every later run)."""
    import torch
    from torch import nn

    from dynprobe.batching.work import analyse_checkpoint
    from dynprobe.intake import LoadOptions

    torch.save(nn.GRU(1, 3).state_dict(), tmp_path / "g.pt")
    torch.set_num_threads(3)
    out = analyse_checkpoint(str(tmp_path / "g.pt"), {"lyapunov": {"steps": 20, "burn_in": 2}}, LoadOptions())
    assert out.probes["lyapunov"].status == "ok"
    assert torch.get_num_threads() == 3 and threads._explicit is None


def test_a_run_still_going_in_another_thread_does_not_make_later_runs_nested(untouched):
    """A probe that timed out keeps running in its abandoned deadline thread; runs in the main
    thread meanwhile still apply the policy (the nesting count was process-wide)."""
    import threading as th

    inside, release = th.Event(), th.Event()

    def hold() -> None:
        with threads.applied(1):
            inside.set()
            release.wait(30)

    worker = th.Thread(target=hold, daemon=True)
    worker.start()
    assert inside.wait(30)
    try:
        torch.set_num_threads(4)
        with threads.applied(1) as n:
            assert n == 1 == torch.get_num_threads()
    finally:
        release.set()
        worker.join(30)
