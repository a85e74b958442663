"""GMSD, MS-GMSD, NLPD and HaarPSI against golden values from established implementations.

``golden/golden_values.json`` was produced once by ``golden/make_golden.py`` with piq 0.8.0, the HaarPSI
authors' NumPy code and the NLPD and GMSD authors' MATLAB code (run in GNU Octave), on slices of real brain
MRI (the bundled sample). Tolerances: 1e-9 absolute in float64 where the definitions coincide; GMSD's MATLAB
code pools with ``std2`` (N - 1) where the paper and this package use the population deviation (N), which is
corrected by the exact factor before comparing.
"""

from __future__ import annotations

import math

import pytest
import torch

from monai_kcross.functional import gmsd, haarpsi, ms_gmsd, nlpd

CASES = ["synthesized", "noise", "blur", "odd", "volume"]


def as_batch(array) -> torch.Tensor:
    return torch.from_numpy(array)[None, None]


@pytest.mark.parametrize("case", CASES)
def test_gmsd_golden(case, golden, golden_inputs):
    pred, ref = as_batch(golden_inputs[f"{case}_pred"]), as_batch(golden_inputs[f"{case}_ref"])
    ours = gmsd(pred, ref, data_range=1.0).item()
    assert ours == pytest.approx(golden[case]["gmsd"], abs=1e-9)
    h, w = (math.ceil(s / 2) for s in ref.shape[2:4])  # pixels of the decimated GMS map
    assert ours * math.sqrt(h * w / (h * w - 1)) == pytest.approx(golden[case]["gmsd_matlab"], abs=1e-9)


@pytest.mark.parametrize("case", CASES)
def test_ms_gmsd_golden(case, golden, golden_inputs):
    pred, ref = as_batch(golden_inputs[f"{case}_pred"]), as_batch(golden_inputs[f"{case}_ref"])
    assert ms_gmsd(pred, ref, data_range=1.0).item() == pytest.approx(golden[case]["ms_gmsd"], abs=1e-9)


@pytest.mark.parametrize("case", CASES)
def test_nlpd_golden(case, golden, golden_inputs):
    pred, ref = as_batch(golden_inputs[f"{case}_pred"]), as_batch(golden_inputs[f"{case}_ref"])
    assert nlpd(pred, ref, data_range=1.0).item() == pytest.approx(golden[case]["nlpd_matlab"], abs=1e-9)


@pytest.mark.parametrize("case", CASES)
def test_haarpsi_golden(case, golden, golden_inputs):
    pred, ref = as_batch(golden_inputs[f"{case}_pred"]), as_batch(golden_inputs[f"{case}_ref"])
    ours = haarpsi(pred, ref, data_range=1.0).item()
    assert ours == pytest.approx(golden[case]["haarpsi_authors"], abs=1e-9)
    assert ours == pytest.approx(golden[case]["haarpsi"], abs=1e-9)


def test_float32_within_1e5_of_golden(golden, golden_inputs):
    pred = as_batch(golden_inputs["volume_pred"]).float()
    ref = as_batch(golden_inputs["volume_ref"]).float()
    for name, fn, key in (
        ("gmsd", gmsd, "gmsd"),
        ("ms_gmsd", ms_gmsd, "ms_gmsd"),
        ("nlpd", nlpd, "nlpd_matlab"),
        ("haarpsi", haarpsi, "haarpsi_authors"),
    ):
        value = fn(pred, ref, data_range=1.0)
        assert value.dtype == torch.float32, name
        assert value.item() == pytest.approx(golden["volume"][key], abs=1e-5), name


@pytest.mark.parametrize("fn", [gmsd, ms_gmsd, nlpd, haarpsi])
def test_slice_axis_selects_the_slices(fn, golden_inputs):
    pred, ref = as_batch(golden_inputs["volume_pred"]), as_batch(golden_inputs["volume_ref"])
    along_last = fn(pred, ref, data_range=1.0, slice_axis=-1)
    moved = fn(pred.movedim(-1, 2), ref.movedim(-1, 2), data_range=1.0, slice_axis=0)
    torch.testing.assert_close(along_last, moved, atol=1e-12, rtol=0)
    per_slice = torch.stack([fn(pred[..., k], ref[..., k], data_range=1.0) for k in range(pred.shape[-1])])
    torch.testing.assert_close(along_last, per_slice.mean(0), atol=1e-12, rtol=0)
