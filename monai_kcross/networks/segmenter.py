"""A fixed tissue-and-lesion segmenter for brain MRI slices of any contrast, trained on the simulator.

Input: one 2-D slice ``(B, 1, H, W)`` of T1w, T2w, PDw or FLAIR and its brain mask. The slice is first
**rank-normalised** inside the brain (every voxel replaced by its intensity quantile among brain voxels, 0
outside), which makes the segmenter blind to any strictly increasing global intensity mapping: scale, offset,
gamma, window. Output: logits over :data:`CLASSES` (background, CSF, GM, WM, lesion = whole tumour).

It serves two purposes: the task-based quality labels of the simulated NIRPS-style dataset
(:mod:`monai_kcross.data.quality`) and the lesion mask of K-CROSS's tumour branch. Weights ship with the
package inside the K-CROSS bundle (``bundles/kcross_brain_mri/models/segmenter.pt``, built by
:func:`train_segmenter`, ``python -m monai_kcross.networks.segmenter --out ...``) and load with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from monai.networks.nets import BasicUNet
from tqdm.auto import tqdm

__all__ = [
    "CLASSES",
    "SEGMENTER_WEIGHTS",
    "build_segmenter",
    "load_segmenter",
    "rank_normalize",
    "segment",
    "train_segmenter",
]

CLASSES = ("background", "csf", "gm", "wm", "lesion")
SEGMENTER_WEIGHTS = Path(__file__).resolve().parents[1] / "bundles" / "kcross_brain_mri" / "models" / "segmenter.pt"
_FEATURES = (16, 16, 32, 64, 128, 16)


def build_segmenter() -> torch.nn.Module:
    """The segmenter architecture: MONAI ``BasicUNet`` (2-D, 1 input channel, 5 classes)."""
    return BasicUNet(spatial_dims=2, in_channels=1, out_channels=len(CLASSES), features=_FEATURES)


def rank_normalize(image: torch.Tensor, brain: torch.Tensor) -> torch.Tensor:
    """Replace brain voxels by their intensity quantile in ``(0, 1]`` (ties share the mean rank); 0 outside.

    Args:
        image: ``(B, 1, H, W)`` (or any ``(B, ...)``), any intensity scale.
        brain: mask of the same shape (bool or 0/1).

    Returns:
        Float32 tensor of the image's shape; invariant to strictly increasing intensity maps.
    """
    flat = image.reshape(image.shape[0], -1).float()
    mask = brain.reshape(brain.shape[0], -1).bool()
    out = torch.zeros_like(flat)
    for index in range(flat.shape[0]):
        values = flat[index][mask[index]]
        if values.numel() == 0:
            continue
        _, inverse, counts = torch.unique(values, return_inverse=True, return_counts=True)
        upper = torch.cumsum(counts, 0).float()
        mean_rank = upper - (counts.float() - 1) / 2  # average rank of tied values
        out[index][mask[index]] = mean_rank[inverse] / values.numel()
    return out.reshape(image.shape)


def load_segmenter(path: str | Path | None = None, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The pretrained segmenter (``eval()`` mode) from ``path`` or the weights shipped with the package.

    Raises:
        FileNotFoundError: naming the missing file and how to build it.
    """
    path = Path(path) if path is not None else SEGMENTER_WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(
            f"segmenter weights {path} are missing; build them with "
            "`python -m monai_kcross.networks.segmenter --out <file>` or reinstall monai-kcross."
        )
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    network = build_segmenter()
    network.load_state_dict(checkpoint["state_dict"] if "state_dict" in checkpoint else checkpoint)
    return network.to(device).eval()


@torch.no_grad()
def segment(
    image: torch.Tensor, brain: torch.Tensor, network: torch.nn.Module | None = None, batch_size: int = 32
) -> torch.Tensor:
    """Class map ``(B, H, W)`` (indices into :data:`CLASSES`) of slices ``(B, 1, H, W)`` inside ``brain``.

    Sizes not divisible by 16 are padded for the network and cropped back; voxels outside the brain are 0.
    """
    network = network or _default_segmenter(str(image.device))
    if image.ndim != 4 or image.shape[1] != 1:
        raise ValueError(f"segment expects slices (B, 1, H, W), got shape {tuple(image.shape)}.")
    brain = brain.reshape(image.shape).bool()
    normalised = rank_normalize(image, brain)
    h, w = image.shape[-2:]
    pad = (0, (-w) % 16, 0, (-h) % 16)
    maps = []
    for start in range(0, image.shape[0], batch_size):
        chunk = F.pad(normalised[start : start + batch_size], pad)
        maps.append(network(chunk.to(next(network.parameters()).device)).argmax(1)[:, :h, :w].cpu())
    classes = torch.cat(maps).to(image.device)
    return torch.where(brain[:, 0], classes, torch.zeros_like(classes))


_CACHE: dict[str, torch.nn.Module] = {}


def _default_segmenter(device: str) -> torch.nn.Module:
    if device not in _CACHE:
        _CACHE[device] = load_segmenter(device=device)
    return _CACHE[device]


def targets_from_simulation(label: torch.Tensor, tissues: torch.Tensor, brain: torch.Tensor) -> torch.Tensor:
    """Training targets ``(H, W)``: lesion where ``label > 0``, else the dominant tissue inside the brain."""
    mapping = torch.tensor([CLASSES.index("gm"), CLASSES.index("wm"), CLASSES.index("csf")])  # tissue order
    tissue = mapping[tissues.argmax(0)]
    target = torch.where(brain, tissue, torch.zeros_like(tissue))
    return torch.where(label > 0, torch.full_like(target, CLASSES.index("lesion")), target)


def _training_slices(n_subjects: int, seed: int, slices_per_subject: int, progress: bool) -> dict[str, torch.Tensor]:
    from ..data.synthesis import CONTRASTS, synthesize_brain

    images, targets, brains = [], [], []
    jobs = [(s, k) for s in range(n_subjects) for k in range(slices_per_subject)]
    for subject, index in tqdm(jobs, desc="simulating", disable=not progress):
        lesion = subject % 4 != 3  # a quarter healthy
        data = synthesize_brain(seed=seed + subject, spatial_dims=2, lesion=lesion, slice_seed=index)
        target = targets_from_simulation(data["label"][0], data["tissues"], data["brain"][0])
        for contrast in CONTRASTS:
            images.append(data[contrast].as_tensor())
            targets.append(target)
            brains.append(data["brain"].as_tensor())
    return {"image": torch.stack(images), "target": torch.stack(targets), "brain": torch.stack(brains)}


def _augment(image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random Rician noise, blur and bias (the rank normalisation already removes global intensity maps)."""
    from ..functional.filtering import gaussian_blur

    batch = image.shape[0]
    span = image.flatten(1).amax(1).reshape(-1, 1, 1, 1)
    sigma = torch.rand(batch, 1, 1, 1, generator=generator) * 0.05 * span
    noisy = torch.hypot(
        image + sigma * torch.randn(image.shape, generator=generator),
        sigma * torch.randn(image.shape, generator=generator),
    )
    if torch.rand(1, generator=generator).item() < 0.3:
        noisy = gaussian_blur(noisy, 0.4 + 0.8 * torch.rand(1, generator=generator).item(), (2, 3))
    return noisy


def train_segmenter(
    out: str | Path,
    n_subjects: int = 120,
    slices_per_subject: int = 3,
    epochs: int = 20,
    batch_size: int = 16,
    learning_rate: float = 2e-3,
    seed: int = 20_000,
    progress: bool = True,
) -> dict[str, float]:
    """Train the segmenter on simulated slices of all four contrasts and save its weights to ``out``.

    Subjects use seeds ``seed ..`` (disjoint from the default dataset seeds), a quarter of them healthy; the
    last 10 % of subjects are held out for the reported Dice. Loss: cross-entropy plus soft Dice.

    Returns:
        Validation Dice per class, training time (s) and sizes.
    """
    from monai.losses import DiceCELoss

    torch.manual_seed(seed)
    data = _training_slices(n_subjects, seed, slices_per_subject, progress)
    n_val = max(1, (n_subjects // 10)) * slices_per_subject * 4
    train = {k: v[:-n_val] for k, v in data.items()}
    val = {k: v[-n_val:] for k, v in data.items()}
    network = build_segmenter()
    optimiser = torch.optim.AdamW(network.parameters(), lr=learning_rate, weight_decay=1e-4)
    steps = epochs * math.ceil(len(train["image"]) / batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=learning_rate, total_steps=steps)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    bar = tqdm(total=steps, desc="training segmenter", disable=not progress)
    for _ in range(epochs):
        order = torch.randperm(len(train["image"]), generator=generator)
        network.train()
        for begin in range(0, len(order), batch_size):
            index = order[begin : begin + batch_size]
            image = _augment(train["image"][index], generator)
            if torch.rand(1, generator=generator).item() < 0.5:  # left-right flips
                image, target, brain = image.flip(-2), train["target"][index].flip(-2), train["brain"][index].flip(-2)
            else:
                target, brain = train["target"][index], train["brain"][index]
            x = rank_normalize(image, brain)
            loss = loss_fn(network(x), target[:, None])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            scheduler.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    network.eval()
    predicted = segment(val["image"], val["brain"], network)
    dice = {}
    for index, name in enumerate(CLASSES[1:], start=1):
        p, t = predicted == index, val["target"] == index
        dice[name] = float(2 * (p & t).sum() / max(int(p.sum() + t.sum()), 1))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        "seconds": time.perf_counter() - start,
        "train_slices": len(train["image"]),
        "val_slices": len(val["image"]),
        **{f"dice_{k}": v for k, v in dice.items()},
    }
    torch.save({"state_dict": network.state_dict(), "classes": list(CLASSES), "summary": summary}, out)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description="Train the tissue-and-lesion segmenter on simulated slices.")
    parser.add_argument("--out", default=str(SEGMENTER_WEIGHTS))
    parser.add_argument("--subjects", type=int, default=120)
    parser.add_argument("--slices", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    summary = train_segmenter(args.out, n_subjects=args.subjects, slices_per_subject=args.slices, epochs=args.epochs)
    print(summary)


if __name__ == "__main__":
    main()
