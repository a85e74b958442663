"""Produce the golden values of GMSD, MS-GMSD, NLPD and HaarPSI with established implementations.

Run once, outside the package's own environment, and commit ``inputs.npz`` and ``golden_values.json``:

* piq 0.8.0 (``piq.gmsd``, ``piq.multi_scale_gmsd``, ``piq.haarpsi``) in a throw-away virtual environment,
  because piq imports torchvision::

      python -m venv /tmp/golden && /tmp/golden/bin/pip install torch==2.14.1 torchvision==0.29.1 piq==0.8.0 \
          nibabel scipy
* the authors' reference code, fetched separately and passed by path (never copied into this repository):
  HaarPSI's ``haarPsi.py`` (github.com/rgcda/haarpsi) and the MATLAB files ``NLP_dist.m`` (Laparra et al.,
  NYU LCV) and ``GMSD.m`` (Xue et al., PolyU), run in GNU Octave with the ``image`` package
  (``apt-get install octave octave-image``)::

      /tmp/golden/bin/python tests/golden/make_golden.py --haarpsi-py /path/haarPsi.py \
          --matlab-dir /path/nlpd --matlab-dir /path/gmsd

The inputs are real anatomy: axial slices of the bundled sample pair (reference with lesion vs the degraded
synthesis), plus noise, blur and odd-sized variants, in the unit range. The 3-D case is 8 consecutive axial
slices; its golden value is the mean of the reference implementation over the slices.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import scipy.io
from scipy import ndimage

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parents[1] / "monai_kcross" / "data" / "sample"


def build_inputs() -> dict[str, np.ndarray]:
    reference = np.asarray(nib.load(SAMPLE / "reference_t1.nii.gz").dataobj, dtype=np.float64)
    synthesized = np.asarray(nib.load(SAMPLE / "synthesized_t1.nii.gz").dataobj, dtype=np.float64)
    scale = max(reference.max(), synthesized.max())
    reference, synthesized = reference / scale, synthesized / scale
    rng = np.random.default_rng(2024)
    ref2d = reference[:, :, 53]
    cases = {
        "synthesized": (synthesized[:, :, 53], ref2d),
        "noise": (np.clip(ref2d + rng.normal(0, 0.03, ref2d.shape), 0, 1), ref2d),
        "blur": (ndimage.gaussian_filter(ref2d, 1.2), ref2d),
        "odd": (synthesized[:77, :95, 53], ref2d[:77, :95]),
        "volume": (synthesized[:, :, 50:58], reference[:, :, 50:58]),
    }
    arrays = {}
    for name, (pred, ref) in cases.items():
        arrays[f"{name}_pred"] = pred.astype(np.float32)
        arrays[f"{name}_ref"] = ref.astype(np.float32)
    return arrays


def slices(pred: np.ndarray, ref: np.ndarray):
    if pred.ndim == 2:
        yield pred, ref
    else:
        for k in range(pred.shape[-1]):
            yield pred[..., k], ref[..., k]


def piq_values(pred: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    import piq
    import torch

    scores: dict[str, list[float]] = {"gmsd": [], "ms_gmsd": [], "haarpsi": []}
    for p, r in slices(pred, ref):
        tp = torch.from_numpy(np.ascontiguousarray(p))[None, None]
        tr = torch.from_numpy(np.ascontiguousarray(r))[None, None]
        scores["gmsd"].append(piq.gmsd(tp, tr, data_range=1.0).item())
        scores["ms_gmsd"].append(piq.multi_scale_gmsd(tp, tr, data_range=1.0).item())
        scores["haarpsi"].append(piq.haarpsi(tp, tr, data_range=1.0).item())
    return {k: float(np.mean(v)) for k, v in scores.items()}


def authors_haarpsi(pred: np.ndarray, ref: np.ndarray, path: Path) -> float:
    spec = importlib.util.spec_from_file_location("haarPsi_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return float(np.mean([module.haar_psi_numpy(255 * r, 255 * p)[0] for p, r in slices(pred, ref)]))


def octave_values(cases: dict[str, tuple[np.ndarray, np.ndarray]], matlab_dirs: list[Path]) -> dict[str, dict]:
    """NLPD (``NLP_dist`` on [0, 1]) and GMSD (``GMSD`` on [0, 255], MATLAB ``std2``) per case."""
    with tempfile.TemporaryDirectory() as tmp:
        data, script = {}, ["pkg load image;"] + [f"addpath('{d}');" for d in matlab_dirs]
        script.append(f"load('{tmp}/in.mat');")
        index = 0
        plan = []
        for name, (pred, ref) in cases.items():
            for p, r in slices(pred, ref):
                data[f"p{index}"], data[f"r{index}"] = p, r
                script.append(f"nlpd({index + 1}) = NLP_dist(r{index}, p{index});")
                script.append(f"gmsd({index + 1}) = GMSD(255 * r{index}, 255 * p{index});")
                plan.append(name)
                index += 1
        script.append(f"save('-v7', '{tmp}/out.mat', 'nlpd', 'gmsd');")
        scipy.io.savemat(f"{tmp}/in.mat", data)
        subprocess.run(["octave", "--no-gui", "-q", "--eval", " ".join(script)], check=True)
        out = scipy.io.loadmat(f"{tmp}/out.mat")
    result: dict[str, dict] = {}
    for metric in ("nlpd", "gmsd"):
        values = out[metric].flatten()
        for name in cases:
            picked = [v for v, n in zip(values, plan) if n == name]
            result.setdefault(name, {})[f"{metric}_matlab"] = float(np.mean(picked))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--haarpsi-py", type=Path, required=True, help="the authors' haarPsi.py")
    parser.add_argument("--matlab-dir", type=Path, action="append", required=True, help="folder with NLP_dist.m/GMSD.m")
    args = parser.parse_args()

    arrays = build_inputs()
    np.savez_compressed(HERE / "inputs.npz", **arrays)
    cases = {
        name[: -len("_pred")]: (
            arrays[name].astype(np.float64),
            arrays[name.replace("_pred", "_ref")].astype(np.float64),
        )
        for name in arrays
        if name.endswith("_pred")
    }
    golden = octave_values(cases, args.matlab_dir)
    for name, (pred, ref) in cases.items():
        golden[name].update(piq_values(pred, ref))
        golden[name]["haarpsi_authors"] = authors_haarpsi(pred, ref, args.haarpsi_py)
    import piq
    import torch

    payload = {
        "description": "golden values; inputs in inputs.npz (float32, cast to float64), data_range=1, "
        "3-D case = mean over the slices along the last axis",
        "produced_with": {"piq": piq.__version__, "torch": torch.__version__, "octave": "GNU Octave + image pkg"},
        "cases": golden,
    }
    (HERE / "golden_values.json").write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
