"""Golden values proving LPIPS, DISTS and WaDIQaM-FR equal their original implementations, with shared weights.

Deterministic random weights are created by this package (NumPy PCG64, see
``monai_kcross.perceptual.weights.random_state_dict``), copied into the ORIGINAL implementations -- the
``lpips`` 0.1.4 package, ``DISTS_pytorch`` 0.1 and pyiqa's WaDIQaM -- and both are run on the same inputs (real
MRI slices from the bundled sample, as 3-channel network inputs). Run once in a throw-away environment that has
torchvision (the originals import it), from the repository root::

    python -m venv /tmp/golden && /tmp/golden/bin/pip install torch==2.14.1 torchvision==0.29.1 pyiqa nibabel \
        safetensors && /tmp/golden/bin/pip install --no-deps lpips==0.1.4 dists-pytorch==0.1
    PYTHONPATH=. /tmp/golden/bin/python tests/golden/make_golden_perceptual.py

and commit ``perceptual_inputs.npz`` and ``perceptual_golden.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import torch

from monai_kcross.perceptual.networks import DISTS, LPIPS, WaDIQaMFR

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parents[1] / "monai_kcross" / "data" / "sample"
SPECS = {
    "lpips": {"backbone_weights": "random:11", "head_weights": "random:12"},
    "dists": {"backbone_weights": "random:21", "alpha_beta": "random:22"},
    "wadiqam": {"weights": "random:31"},
}


def inputs() -> dict[str, np.ndarray]:
    ref = np.asarray(nib.load(SAMPLE / "reference_t1.nii.gz").dataobj, dtype=np.float64)
    syn = np.asarray(nib.load(SAMPLE / "synthesized_t1.nii.gz").dataobj, dtype=np.float64)
    scale = ref.max()
    ref, syn = ref / scale, syn / scale
    grey_x = np.stack([syn[:, :, z] for z in (45, 53)])[:, None].repeat(3, 1)  # (2, 3, 78, 96), grey as RGB
    grey_y = np.stack([ref[:, :, z] for z in (45, 53)])[:, None].repeat(3, 1)
    colour_x = np.stack([syn[:, :, 50], syn[:, :, 52], syn[:, :, 54]])[None]  # (1, 3, 78, 96), channels differ
    colour_y = np.stack([ref[:, :, 50], ref[:, :, 52], ref[:, :, 54]])[None]
    return {
        "unit_x": np.concatenate([grey_x, colour_x]).astype(np.float32),
        "unit_y": np.concatenate([grey_y, colour_y]).astype(np.float32),
    }


def copy_backbone(ours: dict[str, torch.Tensor], original: torch.nn.Module, prefix_pattern: str) -> None:
    """Copy ``features.<i>.<p>`` into an original module whose parameters are named ``<slice>.<i>.<p>``."""
    state = original.state_dict()
    copied = 0
    for name in list(state):
        parts = name.split(".")
        if len(parts) >= 3 and parts[0].startswith(prefix_pattern) and parts[1].isdigit():
            key = f"features.{parts[1]}.{'.'.join(parts[2:])}"
            if key in ours:
                state[name] = ours[key].clone()
                copied += 1
    expected = sum(1 for k in ours if k.startswith("features."))
    assert copied == expected, f"copied {copied} of {expected} backbone tensors"
    original.load_state_dict(state)


def lpips_golden(x: torch.Tensor, y: torch.Tensor) -> dict[str, list[float]]:
    import lpips as original_lpips

    out = {}
    for net in ("vgg", "alex", "squeeze"):
        ours = LPIPS(net, **SPECS["lpips"])
        original = original_lpips.LPIPS(net=net, pretrained=False, pnet_rand=True, verbose=False).eval()
        backbone = {k[len("net.") :]: v for k, v in ours.state_dict().items() if k.startswith("net.features.")}
        copy_backbone(backbone, original.net, "slice")
        for k, lin in enumerate(ours.lins):
            original.lins[k].model[-1].weight.data.copy_(lin.weight.data)
        with torch.no_grad():
            out[net] = original(2 * x - 1, 2 * y - 1).flatten().tolist()
    return out


def dists_golden(x: torch.Tensor, y: torch.Tensor) -> list[float]:
    import torchvision
    from DISTS_pytorch import DISTS_pt

    vgg16 = torchvision.models.vgg16
    DISTS_pt.models = SimpleNamespace(vgg16=lambda pretrained=False, **kwargs: vgg16(weights=None))  # no download
    ours = DISTS(**SPECS["dists"])
    original = DISTS_pt.DISTS(load_weights=False).eval()
    copy_backbone({k: v for k, v in ours.state_dict().items() if k.startswith("features.")}, original, "stage")
    original.alpha.data.copy_(ours.alpha)
    original.beta.data.copy_(ours.beta)
    with torch.no_grad():
        return original(x, y).flatten().tolist()


def wadiqam_golden(x: torch.Tensor, y: torch.Tensor) -> list[float]:
    from pyiqa.archs.wadiqam_arch import WaDIQaM

    ours = WaDIQaMFR(**SPECS["wadiqam"]).state_dict()
    converted = dict(ours)
    for head in ("q", "w"):  # ours: (f_d - f_r, f_d, f_r); pyiqa: (f_r, f_d, f_d - f_r)
        diff, dist, ref = ours[f"fc_{head}.0.weight"].split(512, dim=1)
        converted[f"fc_{head}.0.weight"] = torch.cat([ref, dist, diff], dim=1)
    original = WaDIQaM(metric_type="FR", pretrained=False).eval()
    original.load_state_dict(converted)
    with torch.no_grad():
        return original(x, y).flatten().tolist()


def main() -> None:
    arrays = inputs()
    np.savez_compressed(HERE / "perceptual_inputs.npz", **arrays)
    x, y = torch.from_numpy(arrays["unit_x"]), torch.from_numpy(arrays["unit_y"])
    # WaDIQaM: pyiqa drops the last row/column of patches when a side is a multiple of 32; 78x96 -> pad to 100x110
    xw = torch.nn.functional.pad(x, (0, 14, 0, 22), mode="reflect")
    yw = torch.nn.functional.pad(y, (0, 14, 0, 22), mode="reflect")
    import pyiqa

    golden = {
        "specs": SPECS,
        "produced_with": {
            "torch": torch.__version__,
            "lpips": "0.1.4",
            "DISTS_pytorch": "0.1",
            "pyiqa": pyiqa.__version__,
        },
        "lpips": lpips_golden(x, y),
        "dists": dists_golden(x, y),
        "wadiqam": wadiqam_golden(xw, yw),
        "wadiqam_padding": [0, 14, 0, 22],
    }
    (HERE / "perceptual_golden.json").write_text(json.dumps(golden, indent=2) + "\n")
    print(json.dumps(golden, indent=2))


if __name__ == "__main__":
    main()
