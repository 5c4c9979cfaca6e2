"""The cache of traced tangent programs: keys, reuse across processes, and never trusting it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from torch import nn

import dynprobe
from dynprobe import graphcache
from dynprobe.linearize import TangentMap, jvp_columns


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DYNPROBE_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("DYNPROBE_NO_CACHE", raising=False)
    graphcache.forget()
    yield tmp_path / "programs"
    graphcache.forget()


def _inputs(n: int, k: int = 2, batch: int = 2):
    gen = torch.Generator().manual_seed(4)
    return (0.5 * torch.randn(batch, n, generator=gen, dtype=torch.float64),
            torch.randn(batch, n, k, generator=gen, dtype=torch.float64))


def _gru(seed: int = 0) -> dynprobe.System:
    torch.manual_seed(seed)
    return dynprobe.wrap(nn.GRU(2, 4).double(), drive=dynprobe.constant([0.3, -0.2]))


def test_a_fresh_process_reuses_the_stored_program(cache):
    h, Q = _inputs(4)
    first = TangentMap(_gru(), trace=True)
    want = first(h, Q)
    assert not first.cached and len(list(cache.rglob("*.json"))) == 1
    graphcache.forget()  # what a new process sees: only the disk
    again = TangentMap(_gru(seed=1), trace=True)  # same architecture and shapes, other weights
    got = again(h, Q)
    assert again.cached and again.mode == "traced"
    ref = jvp_columns(again.system, h, Q)
    torch.testing.assert_close(got[1], ref[1], rtol=0, atol=1e-13)
    assert not torch.equal(got[1], want[1])  # the weights are inputs, not baked in


def test_a_short_run_uses_a_cached_program_and_stays_eager_otherwise(cache):
    h, Q = _inputs(4)
    short = TangentMap(_gru(), expected_calls=10)
    short(h, Q)
    assert short.mode.startswith("eager") and not list(cache.rglob("*.json"))
    TangentMap(_gru(), trace=True)(h, Q)
    reused = TangentMap(_gru(), expected_calls=10)
    reused(h, Q)
    assert reused.cached and reused.mode == "traced"


def test_keys_follow_code_closure_values_and_shapes():
    def key(fn, n=3, k=2):
        s = dynprobe.System.from_step(fn, state_dim=n, dtype=torch.float64)
        tangent = TangentMap(s, trace=True)
        h, Q = _inputs(n, k)
        return tangent._fingerprint(h, Q, s.drive.external(s, 0, (2,)))

    scale = torch.tensor(2.0, dtype=torch.float64)
    assert key(lambda h, u, p: torch.tanh(h)) == key(lambda h, u, p: torch.tanh(h))
    assert key(lambda h, u, p: torch.tanh(h)) != key(lambda h, u, p: torch.sin(h))
    assert key(lambda h, u, p: 0.5 * h) != key(lambda h, u, p: 0.25 * h)
    assert key(lambda h, u, p: torch.tanh(h)) != key(lambda h, u, p: torch.tanh(h), n=4)
    assert key(lambda h, u, p: torch.tanh(h)) != key(lambda h, u, p: torch.tanh(h), k=3)
    a = key(lambda h, u, p: scale * h)
    scale += 1.0  # a closure tensor's value is part of the key
    assert key(lambda h, u, p: scale * h) != a
    lock = threading.Lock()
    assert key(lambda h, u, p: h if lock else h) is None  # not digestable: memory only


def test_a_tampered_program_is_caught_and_retraced(cache):
    h, Q = _inputs(4)
    TangentMap(_gru(), trace=True)(h, Q)
    (path,) = cache.rglob("*.json")
    data = json.loads(path.read_text())
    sig = [i for i, ins in enumerate(data["body"]) if ins[1] == "aten.sigmoid.default"]
    data["body"][sig[0]][1] = "aten.tanh.default"
    path.write_text(json.dumps(data))
    graphcache.forget()
    tangent = TangentMap(_gru(), trace=True)
    got = tangent(h, Q)
    assert not tangent.cached  # rejected by the reverse-mode check, traced afresh
    ref = jvp_columns(tangent.system, h, Q)
    torch.testing.assert_close(got[1], ref[1], rtol=0, atol=1e-13)


def test_unreadable_cache_files_only_cost_a_retrace(cache):
    h, Q = _inputs(4)
    TangentMap(_gru(), trace=True)(h, Q)
    (path,) = cache.rglob("*.json")
    path.write_text("{not json")
    graphcache.forget()
    tangent = TangentMap(_gru(), trace=True)
    tangent(h, Q)
    assert not tangent.cached and tangent.mode == "traced"


def test_the_disk_cache_can_be_turned_off(cache, monkeypatch):
    monkeypatch.setenv("DYNPROBE_NO_CACHE", "1")
    h, Q = _inputs(4)
    TangentMap(_gru(), trace=True)(h, Q)
    assert graphcache.cache_dir() is None and not cache.exists()


def test_a_warm_cache_spares_a_fresh_process_torch_func(cache, tmp_path):
    script = (
        "import sys, torch, dynprobe\n"
        "from torch import nn\n"
        "torch.manual_seed(0)\n"
        "s = dynprobe.wrap(nn.RNN(1, 16, bias=False), dtype=torch.float64)\n"
        "ds = dynprobe.run('lyapunov', s, k=4, steps=300)\n"
        "print(ds.attrs['linearization'], 'torch._dynamo' in sys.modules)\n"
    )
    exec(compile(script.replace("print(", "_ = ("), "<warm>", "exec"), {})  # fills the cache in this process
    env = {**__import__("os").environ, "DYNPROBE_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["traced", "False"], out.stdout


def test_a_broadcast_tensor_is_fingerprinted_by_its_values():
    """An expanded tensor (stride 0, as a looped path's captured constant) hashes like a plain
    copy of its values; it used to fail in view(uint8) on the stride-0 dimension."""
    plain = torch.full((1,), 0.3, dtype=torch.float64)
    expanded = torch.tensor(0.3, dtype=torch.float64).expand(1)
    assert expanded.stride() == (0,)
    assert graphcache.fingerprint({"c": expanded}) == graphcache.fingerprint({"c": plain})
    assert graphcache.fingerprint({"c": expanded}) != graphcache.fingerprint({"c": plain + 1})
