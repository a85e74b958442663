"""Produce the golden values of BRISQUE features and NIQE with established implementations.

Run once, outside the package's own environment, and commit ``no_reference_inputs.npz`` and
``no_reference_golden.json``:

* piq 0.8.0 (``piq.brisque._natural_scene_statistics`` with ``piq.functional.imresize``) for the BRISQUE
  features, in the same throw-away environment as ``make_golden.py`` (it also needs ``monai`` and ``nibabel``
  to build the inputs with the package's simulator);
* the authors' MATLAB code, fetched separately and passed by folder (never copied into this repository), run in
  GNU Octave with the ``image`` package (which provides ``fspecial``, ``imfilter`` and a MATLAB-compatible
  antialiased ``imresize``):

  - BRISQUE (LIVE release): ``brisque_feature.m``, ``estimateggdparam.m``, ``estimateaggdparam.m``;
  - NIQE (LIVE release): ``computequality.m``, ``computefeature.m``, ``computemean.m``,
    ``estimateaggdparam.m``, ``estimatemodelparam.m``.

  ::

      /work/goldenv/bin/python tests/golden/make_no_reference_golden.py \\
          --brisque-dir /work/ext/brisque --niqe-dir /work/ext/niqe

Octave lacks four MATLAB functions the NIQE code calls; this script writes minimal stand-ins into a temporary
folder: ``blkproc`` (zero overlap, exact tiling: the only case used), ``nanmean`` and ``nancov`` (statistics
toolbox semantics: column means ignoring NaN, covariance of the complete rows with ``N - 1``) and ``imread``
(the pristine images are passed as MAT files holding the double array ``im``). ``estimatemodelparam.m`` is
copied to the temporary folder with two portability edits: Windows path separators (``\\``) become ``/`` and
``names(3:end,:)`` (skipping the ``.``/``..`` entries of Windows' ``ls``) becomes ``names(1:end,:)``, since
Octave's ``ls`` lists neither.

Inputs (``no_reference_inputs.npz``): real anatomy from the bundled sample pair (an axial slice of the reference
and of the synthesized image) and slices of the package's MR simulator for test seeds the shipped models were
not fitted on (T1w, T2w, FLAIR with a tumour; T1w with Rician noise and with blur; an odd-sized crop), a 3-slice
volume and a crop of scikit-image's ``camera`` photograph. The model-fit comparison runs ``estimatemodelparam``
on the six 2-D MR slices (a numerical check of the fitting code; they are not pristine images).
MR images are stored as uint16 (value ``k`` means intensity ``k / 65535``), the photograph as uint8 (``k / 255``);
references and the package receive the same float64 images on the 0-255 scale (``255 * x``).

NIQE golden scores use the *shipped* models' ``mu``/``cov`` (``nr_models/niqe_{mri,natural}.npz``): 32x32
patches for MR images, 96x96 for the photograph. The 3-D golden values are the means over the axial slices.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import scipy.io

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MODELS = ROOT / "monai_kcross" / "functional" / "nr_models"
SAMPLE_SLICE = 40
NIQE_MRI_CASES = ("sample_synthesized", "t1", "t2", "flair", "t1_noise", "t1_blur", "odd", "volume")
NIQE_NATURAL_CASES = ("photo",)
FIT_CASES = ("t1", "t2", "flair", "t1_noise", "t1_blur", "odd")  # numerical check of the fit, not pristine images

SHIMS = {
    "blkproc.m": """function out = blkproc(a, blk, border, fun)
  % stand-in: zero overlap and exact tiling only (the NIQE code's use)
  if any(border(:) ~= 0) || any(mod(size(a), blk) ~= 0)
    error('blkproc stand-in: zero overlap and exact tiling only');
  end
  out = [];
  for j = 1:size(a, 2) / blk(2)
    column = [];
    for i = 1:size(a, 1) / blk(1)
      column = [column; fun(a((i - 1) * blk(1) + (1:blk(1)), (j - 1) * blk(2) + (1:blk(2))))];
    end
    out = [out column];
  end
end
""",
    "nanmean.m": """function m = nanmean(x)
  % stand-in: column means ignoring NaN
  missing = isnan(x);
  x(missing) = 0;
  m = sum(x, 1) ./ sum(~missing, 1);
end
""",
    "nancov.m": """function c = nancov(x)
  % stand-in: covariance (N - 1) of the rows without NaN
  x = x(~any(isnan(x), 2), :);
  n = size(x, 1);
  centred = x - sum(x, 1) / n;
  c = (centred' * centred) / (n - 1);
end
""",
    "imread.m": """function im = imread(file)
  % stand-in: images are MAT files holding the double array 'im'
  data = load(strtrim(file));
  im = data.im;
end
""",
}


def build_inputs() -> dict[str, np.ndarray]:
    """Test images as uint16 (MR, ``k / 65535``) or uint8 (photograph, ``k / 255``)."""
    sys.path.insert(0, str(ROOT))
    import nibabel as nib
    import skimage.data
    from scipy import ndimage

    from monai_kcross.data import synthesize_brain

    sample = ROOT / "monai_kcross" / "data" / "sample"
    reference = np.asarray(nib.load(sample / "reference_t1.nii.gz").dataobj, dtype=np.float64)
    synthesized = np.asarray(nib.load(sample / "synthesized_t1.nii.gz").dataobj, dtype=np.float64)
    scale = max(reference.max(), synthesized.max())

    def unit(image: np.ndarray) -> np.ndarray:
        return image / image.max()

    subject = synthesize_brain(1000, 2, lesion=True)
    t1, t2, flair = (unit(subject[c][0].as_tensor().double().numpy()) for c in ("t1", "t2", "flair"))
    rng = np.random.default_rng(2024)
    noisy = np.hypot(t1 + 0.04 * rng.standard_normal(t1.shape), 0.04 * rng.standard_normal(t1.shape))
    volume = synthesize_brain(1001, 3, lesion=False)["t1"][0].as_tensor().double().numpy()[:, :, 52:55]
    mr = {
        "sample_reference": reference[:, :, SAMPLE_SLICE] / scale,
        "sample_synthesized": synthesized[:, :, SAMPLE_SLICE] / scale,
        "t1": t1,
        "t2": t2,
        "flair": flair,
        "t1_noise": unit(noisy),
        "t1_blur": ndimage.gaussian_filter(t1, 1.2),
        "odd": t2[:111, :127],
        "volume": unit(volume),
    }
    arrays = {name: np.round(np.clip(image, 0, 1) * 65535).astype(np.uint16) for name, image in mr.items()}
    arrays["photo"] = skimage.data.camera()[64:256, 96:384].copy()  # 192 x 288, uint8
    return arrays


def as_unit(array: np.ndarray) -> np.ndarray:
    return array.astype(np.float64) / (255.0 if array.dtype == np.uint8 else 65535.0)


def slices(image: np.ndarray) -> list[np.ndarray]:
    return [image] if image.ndim == 2 else [image[..., k] for k in range(image.shape[-1])]


def piq_features(image: np.ndarray) -> list[list[float]] | None:
    """piq's BRISQUE features per slice (even sizes only: piq halves to ``floor(n / 2)``, MATLAB to ``ceil``)."""
    import torch
    from piq.brisque import _natural_scene_statistics
    from piq.functional import imresize

    if any(s % 2 for s in image.shape[:2]):
        return None
    out = []
    for plane in slices(image):
        x = torch.from_numpy(255.0 * plane)[None, None]
        fine = _natural_scene_statistics(x)
        coarse = _natural_scene_statistics(imresize(x, sizes=(x.size(2) // 2, x.size(3) // 2)))
        out.append(torch.cat([fine, coarse], dim=-1).flatten().tolist())
    return out


def run_octave(script: list[str], workdir: Path) -> None:
    subprocess.run(["octave", "--no-gui", "-q", "--eval", " ".join(script)], check=True, cwd=workdir)


def octave_values(cases: dict[str, np.ndarray], brisque_dir: Path, niqe_dir: Path) -> dict[str, dict]:
    """BRISQUE features, NIQE scores and a NIQE model fit from the authors' code."""
    niqe_models = {name: np.load(MODELS / f"niqe_{name}.npz") for name in ("mri", "natural")}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shims = work / "shims"
        shims.mkdir()
        for name, text in SHIMS.items():
            (shims / name).write_text(text)
        source = (niqe_dir / "estimatemodelparam.m").read_text()
        patched = source
        for old, new in (
            ("'%s\\\\%s'", "'%s/%s'"),
            ("'local_risquee_prisfeatures\\\\", "'local_risquee_prisfeatures/"),
            ("names(3:end,:)", "names(1:end,:)"),
        ):
            patched = patched.replace(old, new)
        if patched.count("names(1:end,:)") != 2 or "\\\\" in patched:
            raise RuntimeError("estimatemodelparam.m is not the expected LIVE release file")
        (shims / "estimatemodelparam.m").write_text(patched)

        data, plan = {}, []
        for name, image in cases.items():
            for k, plane in enumerate(slices(image)):
                data[f"im{len(plan)}"] = 255.0 * plane
                plan.append((name, k))
        for name in ("mri", "natural"):
            data[f"mu_{name}"] = niqe_models[name]["mu"][None]
            data[f"cov_{name}"] = niqe_models[name]["cov"]
        scipy.io.savemat(work / "in.mat", data)
        pristine = work / "pristine"
        pristine.mkdir()
        for name in FIT_CASES:
            scipy.io.savemat(pristine / f"{name}.mat", {"im": 255.0 * cases[name]})

        # BRISQUE (its estimateaggdparam differs from NIQE's: separate Octave runs)
        script = ["pkg load image;", f"addpath('{brisque_dir}');", "load('in.mat');"]
        script += [f"brisque_feat({i + 1}, :) = brisque_feature(im{i});" for i in range(len(plan))]
        script.append("save('-v7', 'brisque.mat', 'brisque_feat');")
        run_octave(script, work)
        # NIQE scores and model fit
        script = ["pkg load image;", f"addpath('{niqe_dir}');", f"addpath('{shims}');", "load('in.mat');"]
        for i, (name, _) in enumerate(plan):
            model = "natural" if name in NIQE_NATURAL_CASES else "mri"
            size = int(niqe_models[model]["patch_size"])
            if name in NIQE_MRI_CASES + NIQE_NATURAL_CASES:
                script.append(
                    f"niqe_score({i + 1}) = computequality(im{i}, {size}, {size}, 0, 0, mu_{model}, cov_{model});"
                )
            else:
                script.append(f"niqe_score({i + 1}) = NaN;")
        script.append(f"[fit_mu, fit_cov] = estimatemodelparam('{pristine}', 32, 32, 0, 0, 0.75);")
        script.append("save('-v7', 'niqe.mat', 'niqe_score', 'fit_mu', 'fit_cov');")
        run_octave(script, work)
        brisque_out = scipy.io.loadmat(work / "brisque.mat")["brisque_feat"]
        niqe_out = scipy.io.loadmat(work / "niqe.mat")
    result: dict[str, dict] = {}
    for i, (name, _) in enumerate(plan):
        entry = result.setdefault(name, {"brisque_features_matlab": [], "niqe_matlab_slices": []})
        entry["brisque_features_matlab"].append(brisque_out[i].tolist())
        entry["niqe_matlab_slices"].append(float(niqe_out["niqe_score"].flatten()[i]))
    for entry in result.values():
        scores = entry.pop("niqe_matlab_slices")
        if not any(np.isnan(scores)):
            entry["niqe_matlab"] = float(np.mean(scores))
    fit = {
        "mu": niqe_out["fit_mu"].flatten().tolist(),
        "cov": niqe_out["fit_cov"].tolist(),
        "images": list(FIT_CASES),
        "patch_size": 32,
        "sharpness_threshold": 0.75,
    }
    return {"cases": result, "niqe_fit": fit}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--brisque-dir", type=Path, required=True, help="folder with brisque_feature.m etc.")
    parser.add_argument("--niqe-dir", type=Path, required=True, help="folder with computequality.m etc.")
    args = parser.parse_args()

    arrays = build_inputs()
    np.savez_compressed(HERE / "no_reference_inputs.npz", **arrays)
    cases = {name: as_unit(array) for name, array in arrays.items()}
    golden = octave_values(cases, args.brisque_dir.resolve(), args.niqe_dir.resolve())
    for name, entry in golden["cases"].items():
        features = piq_features(cases[name])
        if features is not None:
            entry["brisque_features_piq"] = features
        entry["niqe_model"] = "natural" if name in NIQE_NATURAL_CASES else "mri"
    import piq
    import torch

    octave = subprocess.run(["octave", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    payload = {
        "description": "no-reference golden values; inputs in no_reference_inputs.npz (uint16 k/65535 or uint8 "
        "k/255, scored as 255 * x); per case one 36-feature BRISQUE row per slice (last axis for the volume) "
        "and the NIQE score (mean over slices) with the shipped model named in niqe_model",
        "produced_with": {
            "piq": piq.__version__,
            "torch": torch.__version__,
            "octave": octave,
            "matlab_code": "LIVE BRISQUE and NIQE releases (authors' MATLAB files, not redistributed)",
        },
        **golden,
    }
    (HERE / "no_reference_golden.json").write_text(json.dumps(payload, indent=1) + "\n")
    print(json.dumps({k: sorted(v) for k, v in golden["cases"].items()}, indent=1))


if __name__ == "__main__":
    main()
