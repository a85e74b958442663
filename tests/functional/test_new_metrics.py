"""VSI, FSIM, VIFp, IW-SSIM, MDSI, CW-SSIM, NMI and PCC against independent references, in 2-D and 3-D.

* VSI, FSIM, VIFp, IW-SSIM, MDSI: ``golden/new_metrics_golden.json``, produced once by
  ``golden/make_new_metrics_golden.py`` with piq 0.8.0 (which reproduces the authors' MATLAB values) on slices of
  real brain MRI (``inputs.npz``); the 3-D case is the mean over the slices. Tolerances (float64): VIFp 1e-9
  (piq's stability constant is 1e-8 where MATLAB's is 1e-10), MDSI 1e-12, IW-SSIM (3 levels) 1e-9, colour VSI
  1e-9, grey VSI 5e-5 (the grey form drops SDSP's colour prior, an artefact for grey input; the reference is
  piq with ``sigma_c = 1e-100``, which makes that prior 1 except at the pixels where it is exactly 0), FSIM
  2e-5 (piq takes the lower middle value as median where MATLAB averages the two).
* The authors' MATLAB values published in piq's tests, on piq's test images (not redistributable, so read
  from a piq checkout named by ``PIQ_ASSETS``): FSIM 0.89691 / 0.93674, VIFp 0.2665 / 0.3147 (1e-4, the
  values are given to 4-5 digits), VSI 0.96405 (1e-5), MDSI 0.395910876130775 / 0.328692181289061 and
  IW-SSIM 0.886297251092821 (1e-9).
* CW-SSIM against the same JSON's ``cw_ssim``: the bands of pyrtools' ``SteerablePyramidFreq`` (the Python port
  of matlabPyrTools' ``buildSCFpyr``) pooled as the authors' ``cwssim_index.m`` does, even-sized cases (1e-9).
* NMI against scikit-image's ``normalized_mutual_information`` and PCC against NumPy's ``corrcoef`` (1e-9),
  computed here.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.metrics import normalized_mutual_information

from monai_kcross.functional import cw_ssim, fsim, iw_ssim, mdsi, nmi, pcc, vif_p, vsi

from ..conftest import GOLDEN_DIR, perturbed_pair

CASES = ["synthesized", "noise", "blur", "odd", "volume"]


@pytest.fixture(scope="module")
def piq_golden() -> dict:
    return json.loads((GOLDEN_DIR / "new_metrics_golden.json").read_text())["cases"]


def as_batch(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array)[None, None]


@pytest.mark.parametrize("case", CASES)
def test_against_piq(case, piq_golden, golden_inputs):
    pred, ref = as_batch(golden_inputs[f"{case}_pred"]), as_batch(golden_inputs[f"{case}_ref"])
    expected = piq_golden[case]
    assert vif_p(pred, ref, data_range=1.0).item() == pytest.approx(expected["vif_p"], abs=1e-9)
    assert mdsi(pred, ref, data_range=1.0).item() == pytest.approx(expected["mdsi"], abs=1e-12)
    assert fsim(pred, ref, data_range=1.0).item() == pytest.approx(expected["fsim"], abs=2e-5)
    assert vsi(pred, ref, data_range=1.0).item() == pytest.approx(expected["vsi_grey"], abs=5e-5)
    if "cw_ssim" in expected:
        assert cw_ssim(pred, ref, data_range=1.0).item() == pytest.approx(expected["cw_ssim"], abs=1e-9)
    iw = iw_ssim(pred, ref, data_range=1.0, weights=(0.0448, 0.2856, 0.3001))
    assert iw.item() == pytest.approx(expected["iw_ssim"], abs=1e-9)


def test_color_vsi_against_piq(piq_golden, golden_inputs):
    pred = torch.from_numpy(np.moveaxis(golden_inputs["volume_pred"][..., :3], -1, 0))[None]
    ref = torch.from_numpy(np.moveaxis(golden_inputs["volume_ref"][..., :3], -1, 0))[None]
    value = vsi(pred, ref, data_range=1.0, color=True)
    assert value.shape == (1, 3) and torch.all(value == value[0, 0])
    assert value[0, 0].item() == pytest.approx(piq_golden["rgb"]["vsi_color"], abs=1e-9)


def _piq_asset(name: str) -> np.ndarray:
    import imageio.v2 as imageio

    root = Path(os.environ["PIQ_ASSETS"])
    if (root / "tests" / "assets" / name).exists():
        return np.asarray(imageio.imread(root / "tests" / "assets" / name), dtype=np.float64)
    data = subprocess.run(
        ["git", "-C", str(root), "show", f"HEAD:tests/assets/{name}"], capture_output=True, check=True
    )
    return np.asarray(imageio.imread(data.stdout), dtype=np.float64)


@pytest.mark.skipif("PIQ_ASSETS" not in os.environ, reason="set PIQ_ASSETS to a piq checkout (test images)")
def test_authors_matlab_values_on_piq_images():
    goldhill, jpeg = as_batch(_piq_asset("goldhill.gif")), as_batch(_piq_asset("goldhill_jpeg.gif"))
    rgb_ref = torch.from_numpy(_piq_asset("I01.BMP")).permute(2, 0, 1)[None]
    rgb_dist = torch.from_numpy(_piq_asset("i01_01_5.bmp")).permute(2, 0, 1)[None]
    luma = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64).view(1, 3, 1, 1)
    y_ref, y_dist = (rgb_ref * luma).sum(1, keepdim=True), (rgb_dist * luma).sum(1, keepdim=True)
    assert fsim(jpeg, goldhill, data_range=255).item() == pytest.approx(0.89691, abs=1e-4)
    assert fsim(y_dist, y_ref, data_range=255).item() == pytest.approx(0.93674, abs=1e-4)
    assert vif_p(jpeg, goldhill, data_range=255).item() == pytest.approx(0.2665, abs=1e-4)
    assert vif_p(y_dist, y_ref, data_range=255).item() == pytest.approx(0.3147, abs=1e-4)
    assert vsi(rgb_dist, rgb_ref, data_range=255, color=True)[0, 0].item() == pytest.approx(0.96405, abs=1e-5)
    assert mdsi(jpeg, goldhill, data_range=255).item() == pytest.approx(0.395910876130775, abs=1e-9)
    assert iw_ssim(jpeg, goldhill, data_range=255).item() == pytest.approx(0.886297251092821, abs=1e-9)
    assert mdsi(jpeg, goldhill, data_range=255, combination="mult").item() == pytest.approx(0.328692181289061, abs=1e-9)


@pytest.mark.parametrize("shape", [(2, 1, 40, 44), (1, 2, 20, 18, 12)])
def test_nmi_and_pcc_equal_skimage_and_numpy(shape):
    pred, ref = perturbed_pair(shape, seed=7)
    mask = torch.zeros(shape[2:], dtype=torch.bool)
    mask[3:-4, 2:-5] = True
    ours_nmi, ours_pcc = nmi(pred, ref, bins=32), pcc(pred, ref)
    masked_nmi, masked_pcc = nmi(pred, ref, mask=mask), pcc(pred, ref, mask=mask)
    for b in range(shape[0]):
        for c in range(shape[1]):
            x, y = pred[b, c].numpy(), ref[b, c].numpy()
            assert ours_nmi[b, c].item() == pytest.approx(normalized_mutual_information(y, x, bins=32), abs=1e-9)
            assert ours_pcc[b, c].item() == pytest.approx(np.corrcoef(y.ravel(), x.ravel())[0, 1], abs=1e-9)
            xm, ym = x[mask.numpy()], y[mask.numpy()]
            assert masked_nmi[b, c].item() == pytest.approx(normalized_mutual_information(ym, xm), abs=1e-9)
            assert masked_pcc[b, c].item() == pytest.approx(np.corrcoef(ym, xm)[0, 1], abs=1e-9)


def test_nmi_and_pcc_ignore_affine_intensity_changes():
    pred, ref = perturbed_pair((1, 1, 32, 32), seed=3)
    for fn in (nmi, pcc):
        torch.testing.assert_close(fn(3.0 * pred + 7.0, ref), fn(pred, ref), atol=1e-9, rtol=0)


def test_pcc_of_a_constant_prediction_is_zero():
    _, ref = perturbed_pair((1, 1, 16, 16), seed=4)
    assert pcc(torch.full_like(ref, 0.3), ref).item() == 0.0


def test_vif_mdsi_and_iw_ssim_are_not_symmetric():
    pred, ref = perturbed_pair((1, 1, 48, 48), seed=5)
    forward, backward = iw_ssim(pred, ref, weights=(0.5, 0.5)), iw_ssim(ref, pred, weights=(0.5, 0.5))
    assert abs(forward.item() - backward.item()) > 1e-6
    assert abs(vif_p(pred, ref, data_range=1.0).item() - vif_p(ref, pred, data_range=1.0).item()) > 1e-3
    assert abs(mdsi(pred, ref, data_range=1.0).item() - mdsi(ref, pred, data_range=1.0).item()) > 1e-6


def test_vif_scales_and_minimum_size():
    pred, ref = perturbed_pair((1, 1, 40, 40), seed=6)
    with pytest.raises(ValueError, match="at least 41"):
        vif_p(pred, ref)
    assert torch.isfinite(vif_p(pred, ref, scales=3)).all()
    with pytest.raises(ValueError, match="scales"):
        vif_p(pred, ref, scales=5)


def test_option_errors():
    pred, ref = perturbed_pair((1, 1, 32, 32), seed=8)
    with pytest.raises(ValueError, match="3 channels"):
        vsi(pred, ref, color=True)
    with pytest.raises(ValueError, match="combination"):
        mdsi(pred, ref, combination="max")
    with pytest.raises(ValueError, match="weights"):
        iw_ssim(pred, ref, weights=(-1.0, 2.0))
    with pytest.raises(ValueError, match="at least 161"):
        iw_ssim(pred, ref)
    with pytest.raises(ValueError, match="at least 64"):
        cw_ssim(pred, ref)
    with pytest.raises(ValueError, match="orientations"):
        cw_ssim(pred, ref, levels=2, orientations=0)
    with pytest.raises(ValueError, match="bins"):
        nmi(pred, ref, bins=1)
