"""Golden values of VSI, FSIM, VIFp, MDSI and IW-SSIM from piq 0.8.0, on the slices of real brain MRI in ``inputs.npz``.

piq reproduces the authors' MATLAB values of these metrics (its tests: VSI 0.96405 on TID2013 I01, FSIM 0.89691,
VIFp 0.2665, MDSI 0.395910876130775 and IW-SSIM 0.886297251092821 on goldhill). Run once in a throw-away
environment (piq imports torchvision), from the repository root, and commit ``new_metrics_golden.json``::

    python -m venv /tmp/golden && /tmp/golden/bin/pip install torch==2.14.1 torchvision==0.29.1 piq==0.8.0
    /tmp/golden/bin/python tests/golden/make_new_metrics_golden.py

Conventions: inputs in ``[0, 1]`` scored with ``data_range=1``; 2-D cases as they are; the 3-D case
(``volume``) is the mean over its slices along the last axis (the package scores volumes slice-wise); the
``rgb`` case stacks three consecutive slices as R, G, B for VSI's colour form. IW-SSIM uses the first three
MS-SSIM weights (the 78x96 slices hold 3 pyramid levels). Grey VSI: piq replicates grey
into RGB, where the SDSP colour prior becomes an artefact of the colour conversion; ``vsi_grey`` is piq with
``sigma_c = 1e-100``, which makes that prior 1 except where a*, b* both sit at their minimum (the package's
grey form drops it).
piq's MDSI "mult" combination treats its (modulus, angle) pairs as (real, imaginary) where the gradient term is
negative, so only "sum" is taken from piq ("mult" is checked against the authors' MATLAB value instead).
CW-SSIM: piq has none; ``cw_ssim`` is computed from the bands of pyrtools' ``SteerablePyramidFreq`` (the Python
port of matlabPyrTools' ``buildSCFpyr``; run ``pip install pyrtools`` too) with the pooling of the authors'
``cwssim_index.m`` (7x7 box, Gaussian weights of sigma = band height / 4, mean over orientations; 4 levels,
8 orientations, K = 0), even-sized cases only: for odd sizes pyrtools centres its frequency grid half a sample
away from the MATLAB code.
piq's FSIM takes the lower middle value as median (``torch.median``) where MATLAB averages the two middle
values; ``fsim`` is therefore compared at a looser tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CASES = ["synthesized", "noise", "blur", "odd", "volume"]


def slices(pred: np.ndarray, ref: np.ndarray):
    if pred.ndim == 2:
        yield pred, ref
    else:
        for k in range(pred.shape[-1]):
            yield pred[..., k], ref[..., k]


def cw_ssim_reference(pred: np.ndarray, ref: np.ndarray, levels: int = 4, orientations: int = 8) -> float:
    """CW-SSIM of two grey images on [0, 1] from pyrtools' complex steerable pyramid (``cwssim_index.m`` pooling)."""
    import pyrtools
    from scipy.signal import correlate2d

    pyr_x = pyrtools.pyramids.SteerablePyramidFreq(255 * pred, levels, orientations - 1, is_complex=True)
    pyr_y = pyrtools.pyramids.SteerablePyramidFreq(255 * ref, levels, orientations - 1, is_complex=True)
    box = np.ones((7, 7)) / 49
    scores = []
    for band in range(orientations):
        bx, by = pyr_x.pyr_coeffs[(levels - 1, band)], pyr_y.pyr_coeffs[(levels - 1, band)]
        corr = correlate2d(bx * np.conj(by), box, mode="valid")
        energy = correlate2d(np.abs(bx) ** 2 + np.abs(by) ** 2, box, mode="valid")
        similarity = 2 * np.abs(corr) / energy
        sigma = bx.shape[0] / 4
        gy = np.exp(-0.5 * ((np.arange(corr.shape[0]) - (corr.shape[0] - 1) / 2) / sigma) ** 2)
        gx = np.exp(-0.5 * ((np.arange(corr.shape[1]) - (corr.shape[1] - 1) / 2) / sigma) ** 2)
        weights = np.outer(gy, gx)
        scores.append((similarity * weights).sum() / weights.sum())
    return float(np.mean(scores))


def main() -> None:
    import piq
    import torch

    def batch(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64))[None, None]

    with np.load(HERE / "inputs.npz") as data:
        arrays = {k: data[k].astype(np.float64) for k in data.files}
    golden: dict[str, dict[str, float]] = {}
    for case in CASES:
        scores: dict[str, list[float]] = {k: [] for k in ("vsi_grey", "fsim", "vif_p", "mdsi", "iw_ssim")}
        for p, r in slices(arrays[f"{case}_pred"], arrays[f"{case}_ref"]):
            x, y = batch(p), batch(r)
            scores["vsi_grey"].append(piq.vsi(x, y, data_range=1.0, sigma_c=1e-100).item())
            scores["fsim"].append(piq.fsim(x, y, data_range=1.0, chromatic=False).item())
            scores["vif_p"].append(piq.vif_p(x, y, data_range=1.0).item())
            scores["mdsi"].append(piq.mdsi(x, y, data_range=1.0).item())
            weights = torch.tensor([0.0448, 0.2856, 0.3001], dtype=torch.float64)
            scores["iw_ssim"].append(piq.information_weighted_ssim(x, y, data_range=1.0, scale_weights=weights).item())
            if p.shape[0] % 2 == 0 and p.shape[1] % 2 == 0:
                scores.setdefault("cw_ssim", []).append(cw_ssim_reference(p, r))
        golden[case] = {k: float(np.mean(v)) for k, v in scores.items()}
    pred_rgb = np.moveaxis(arrays["volume_pred"][..., :3], -1, 0)[None]
    ref_rgb = np.moveaxis(arrays["volume_ref"][..., :3], -1, 0)[None]
    golden["rgb"] = {"vsi_color": piq.vsi(torch.from_numpy(pred_rgb), torch.from_numpy(ref_rgb), data_range=1.0).item()}
    payload = {
        "description": "piq 0.8.0 values on inputs.npz (float32 cast to float64), data_range=1; volume = mean over "
        "the slices along the last axis; rgb = slices 0-2 of the volume case as R, G, B",
        "produced_with": {"piq": piq.__version__, "torch": torch.__version__},
        "cases": golden,
    }
    (HERE / "new_metrics_golden.json").write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
