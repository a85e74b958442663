"""Convert the small trained heads that ship with the package into ``monai_kcross/perceptual/weights``.

Sources (PyPI wheels, read as data; no code from them is used)::

    pip download --no-deps lpips==0.1.4 dists-pytorch==0.1
    python scripts/make_perceptual_heads.py --lpips-wheel lpips-0.1.4-py3-none-any.whl \
        --dists-wheel DISTS_pytorch-0.1-py3-none-any.whl

Writes ``lpips_v0.1_{vgg,alex,squeeze}.safetensors`` (the LPIPS v0.1 linear layers, BSD-2-Clause) and
``dists_alpha_beta.safetensors`` (DISTS alpha/beta, MIT). Loading uses ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import torch

from monai_kcross.perceptual.weights import PACKAGE_WEIGHTS, WEIGHT_FILES, save_weight_file


def read_member(wheel: Path, suffix: str) -> dict[str, torch.Tensor]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(suffix))
        return torch.load(io.BytesIO(archive.read(name)), map_location="cpu", weights_only=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lpips-wheel", type=Path, required=True)
    parser.add_argument("--dists-wheel", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=PACKAGE_WEIGHTS)
    args = parser.parse_args()
    for net in ("vgg", "alex", "squeeze"):
        heads = read_member(args.lpips_wheel, f"weights/v0.1/{net}.pth")
        path = save_weight_file(heads, args.out / WEIGHT_FILES[f"lpips_{net}"])
        print(f"wrote {path} ({len(heads)} tensors)")
    dists = read_member(args.dists_wheel, "DISTS_pytorch/weights.pt")
    path = save_weight_file({"alpha": dists["alpha"], "beta": dists["beta"]}, args.out / WEIGHT_FILES["dists"])
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
