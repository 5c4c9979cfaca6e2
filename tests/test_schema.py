"""The dimension vocabulary as code (dynprobe.schema): docs/RESULTS.md's Terms table is the
vocabulary, every bundled probe declares and documents its dims, and the checker catches a
result whose dims are neither declared nor in the vocabulary — on a single network and on the
two-network ensemble check_probe runs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from torch import nn

import dynprobe
from dynprobe.errors import PluginError
from dynprobe.labels import lead_dims, variable
from dynprobe.registry import registry
from dynprobe.schema import VOCABULARY, Dimension, check_dims, terms_table
from dynprobe.testing import check_probe

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "RESULTS.md"


def _rnn() -> dynprobe.System:
    torch.manual_seed(0)
    return dynprobe.wrap(nn.RNN(1, 3), dtype=torch.float64, drive=dynprobe.constant(0.3))


def test_results_terms_table_is_the_vocabulary():
    text = RESULTS.read_text()
    start = text.index("| dimension | meaning |")
    table = text[start:text.index("\n\n", start)]
    assert table == terms_table(), "docs/RESULTS.md's Terms table differs from dynprobe.schema; paste:\n" + terms_table()


def _section(text: str, probe: str) -> str:
    match = re.search(rf"^### `{probe}`.*?(?=^### |\Z)", text, flags=re.S | re.M)
    assert match, f"docs/RESULTS.md has no contract section for {probe!r}"
    return match.group(0)


def test_every_bundled_probe_declares_its_dims_and_its_contract_names_them():
    text = RESULTS.read_text()
    bundled = {name: p for name, p in registry().probes().items() if p.version.startswith("dynprobe ")}
    assert bundled
    for name, probe in bundled.items():
        assert probe.dims is not None, f"bundled probe {name!r} declares no dims (Probe(..., dims=...))"
        section = _section(text, name)
        named = {word for span in re.findall(r"`([^`]*)`", section) for word in re.findall(r"\w+", span)}
        missing = [d for d in probe.dimensions if d not in named]
        assert not missing, f"docs/RESULTS.md's {name!r} contract does not mention its dims {missing}"


# ---------------------------------------------------------------- a plugin's own probes

LAG = Dimension("lag", meaning="steps between a state and the readout", coordinate="0, 1, …", units="step",
                kind="steps")


def _probe(dim: str = "lag", units: str = "step", ensemble_dim: str = "network"):
    """A probe returning ``mean[network?, dim]`` with the coordinate in ``units``."""

    def run(system: dynprobe.System, *, steps: int = 4) -> xr.Dataset:
        h = system.trajectory(system.initial_state(1), steps)[1:, ..., 0, 0]  # [T, *lead]
        lead = lead_dims(system)
        coords = {dim: (dim, np.arange(steps), {"long_name": "lag", "units": units})}
        if lead:
            coords[ensemble_dim] = (ensemble_dim, np.arange(system.networks), {"long_name": "network", "units": "1"})
        return xr.Dataset({"mean": variable([ensemble_dim] * len(lead) + [dim], h.movedim(0, -1), "state")},
                          coords=coords)

    return run


def _register(inline_registry, *probes: dynprobe.Probe) -> None:
    class Plugin:
        @staticmethod
        @dynprobe.hookimpl
        def dynprobe_probes():
            return list(probes)

    inline_registry(Plugin)


def test_a_plugin_declaring_its_own_dim_passes_on_a_network_and_an_ensemble(inline_registry):
    system = _rnn()
    _register(inline_registry, dynprobe.Probe("lagged", _probe(), dims=(LAG,)))
    ds = check_probe("lagged", system)
    assert ds["mean"].dims == ("lag",)


def test_a_probe_returning_an_undeclared_dim_is_caught_in_one_line(inline_registry):
    system = _rnn()
    _register(inline_registry, dynprobe.Probe("lagged", _probe(), dims=("unit",)),
              dynprobe.Probe("loose", _probe()))  # undeclared: only vocabulary names allowed
    with pytest.raises(AssertionError) as caught:
        check_probe("lagged", system)
    message = str(caught.value)
    assert "\n" not in message
    assert "probe 'lagged'" in message and "dimension 'lag'" in message and "dynprobe.Dimension('lag'" in message
    with pytest.raises(AssertionError, match=r"probe 'loose': dimension 'lag' is neither in dynprobe's vocabulary"):
        check_probe("loose", system)


def test_a_vocabulary_dim_the_probe_did_not_declare_is_caught(inline_registry):
    system = _rnn()
    _register(inline_registry, dynprobe.Probe("timed", _probe("time"), dims=("sample",)))
    with pytest.raises(AssertionError, match=r"dimension 'time' is not among the probe's declared dims \(sample\); "
                                             r"add 'time' to Probe\(\.\.\., dims=\.\.\.\)"):
        check_probe("timed", system)


def test_a_coordinate_in_other_units_is_caught(inline_registry):
    system = _rnn()
    _register(inline_registry, dynprobe.Probe("seconds", _probe("time", units="s"), dims=("time",)))
    with pytest.raises(AssertionError, match=r"coordinate 'time' has units 's', but 'time' .* is in 'step'"):
        check_probe("seconds", system)


def test_an_ensemble_only_dim_is_caught_on_the_ensemble(inline_registry):
    """Right on one network, a home-made lead dim on two: only the ensemble run shows it."""
    system = _rnn()
    _register(inline_registry, dynprobe.Probe("netted", _probe(ensemble_dim="net"), dims=(LAG,)))
    check_probe("netted", system, ensemble=False)
    with pytest.raises(AssertionError, match=r"on an ensemble .*dimension 'net' is neither in dynprobe's vocabulary"):
        check_probe("netted", system)


def test_validate_looks_the_probe_up_from_the_result(inline_registry):
    system = _rnn()
    _register(inline_registry, dynprobe.Probe("lagged", _probe(), dims=(LAG,)))
    ds = dynprobe.run("lagged", system)
    assert dynprobe.validate(ds) == []
    assert dynprobe.validate(ds.rename(lag="lags"))[0].startswith("probe 'lagged': dimension 'lags' is neither")
    with pytest.raises(dynprobe.DynprobeError, match="no probe 'nope' is installed"):
        dynprobe.validate(ds, probe="nope")


def test_check_dims_checks_the_kind_of_values():
    ds = xr.Dataset(coords={"sample": ("sample", np.array([0.5, 1.5]), {"long_name": "s", "units": "1"}),
                            "checkpoint": ("checkpoint", np.array(["a", "b"], dtype=object),
                                           {"long_name": "c", "units": "1"})})
    assert check_dims(ds, None) == ["result: coordinate 'sample' has dtype float64; 'sample' holds integers (0, 1, …)"]


def test_declarations_are_checked_at_registration():
    run = _probe()
    with pytest.raises(PluginError, match=r"probe 'p': dimension 'tiem' is not in dynprobe's vocabulary .*"
                                          r"dynprobe.Dimension\('tiem'"):
        dynprobe.Probe("p", run, dims=("tiem",))
    with pytest.raises(PluginError, match=r"dimension 'time' is dynprobe's \(time index t of a state"):
        dynprobe.Probe("p", run, dims=(Dimension("time", "seconds since start", "the values", "s", "value"),))
    with pytest.raises(PluginError, match=r"write dims=\('unit',\)"):
        dynprobe.Probe("p", run, dims="unit")
    with pytest.raises(PluginError, match="kind='seconds'; use one of index, steps, value, label"):
        Dimension("lag", "a lag", "0, 1, …", "step", "seconds")  # type: ignore[arg-type]
    assert dynprobe.Probe("p", run, dims=["unit", LAG]).dims == ("unit", LAG)  # a list is kept as a tuple
    assert dynprobe.Probe("p", run, dims=(VOCABULARY["time"],)).dimensions == {"time": VOCABULARY["time"]}
