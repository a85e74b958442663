"""Training the contrast-agnostic tissue-and-lesion segmenter on domain-randomised slices.

Every step draws a fresh batch from :class:`~monai_kcross.data.randomised.RandomisedBrains` (random anatomy from
every available template, random contrast, resolution, orientation, artefacts and lesions), rank-normalises it
inside its foreground exactly as inference does (:func:`~monai_kcross.networks.segmenter.segment_probabilities`)
and minimises Dice + cross-entropy. The subject pool is refreshed as training goes, so the network rarely sees
the same anatomy twice. A fixed validation stream from other seeds gives the lesion Dice, the ratio of predicted
to true lesion area and the tissue Dice; the weights of the best validation step are kept.

Command line: ``python -m monai_kcross.training.segmenter --out segmenter.pt [--steps N] [--templates DIR]``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import torch

from ..data.randomised import RandomisedBrains, available_templates
from ..networks.segmenter import CLASSES, FEATURES, build_segmenter, rank_normalize, segment_probabilities

__all__ = ["evaluate_segmenter", "train_segmenter"]

LESION = CLASSES.index("lesion")


def evaluate_segmenter(
    network: torch.nn.Module, images: torch.Tensor, target: torch.Tensor, foreground: torch.Tensor | None = None
) -> dict[str, float]:
    """Dice per class (pooled over the slices), lesion area ratio (predicted / true) and false-positive lesion
    area on slices without lesion (fraction of their foreground).

    Args:
        network: a segmenter in ``eval()`` mode.
        images: ``(N, 1, H, W)`` slices.
        target: ``(N, H, W)`` classes.
        foreground: ``(N, 1, H, W)``; default as at inference.
    """
    predicted = segment_probabilities(images, foreground, network).argmax(1)
    out: dict[str, float] = {}
    for index, name in enumerate(CLASSES[1:], start=1):
        p, t = predicted == index, target == index
        out[f"dice_{name}"] = float(2 * (p & t).sum() / max(int(p.sum() + t.sum()), 1))
    true_area = int((target == LESION).sum())
    out["lesion_area_ratio"] = float((predicted == LESION).sum()) / max(true_area, 1)
    healthy = (target == LESION).flatten(1).sum(1) == 0
    if bool(healthy.any()):
        fg = (target[healthy] > 0).sum().clamp_min(1)
        out["healthy_false_positive"] = float((predicted[healthy] == LESION).sum() / fg)
    return out


def train_segmenter(
    out: str | Path,
    steps: int = 6000,
    batch_size: int = 12,
    learning_rate: float = 2e-3,
    seed: int = 30_000,
    templates: list[str] | None = None,
    pool_size: int = 40,
    refresh_every: int = 50,
    validate_every: int = 250,
    max_minutes: float | None = None,
    features: tuple[int, ...] = FEATURES,
    shape: tuple[int, int] = (96, 96),
    progress: bool = True,
    log: str | Path | None = None,
    init: str | Path | None = None,
    mimic: float = 0.0,
) -> dict[str, Any]:
    """Train the segmenter and save ``{"state_dict", "features", "classes", "summary"}`` to ``out``.

    Args:
        out: checkpoint path (written at every validation that improves the validation score).
        steps: optimiser steps (cosine learning-rate schedule over them).
        batch_size: slices per step.
        learning_rate: peak AdamW learning rate.
        seed: seed of the training stream (validation uses ``seed + 1``).
        templates: tissue templates (default: :func:`available_templates`).
        pool_size: subjects in memory; ``refresh_every`` steps replace two of them.
        validate_every: steps between validations (192 fixed slices).
        max_minutes: stop early after this wall time (the best weights so far are kept).
        features: ``BasicUNet`` widths.
        shape: training slice size (crops centred on the brain or its lesion).
        progress: show a progress bar.
        log: optional JSON-lines file receiving the validation records.
        init: a segmenter checkpoint to continue from (warm start; its ``features`` are used).
        mimic: probability of lesions with an intensity between two normal tissues (see
            :class:`~monai_kcross.data.randomised.RandomisedBrains`).

    Returns:
        The summary of the best validation (also stored in the checkpoint).
    """
    from monai.losses import DiceCELoss

    from ..progress import tqdm

    torch.manual_seed(seed)
    templates = templates or list(available_templates().values())
    stream = {"shape": shape, "mimic": mimic}
    train_stream = RandomisedBrains(templates, pool_size=pool_size, seed=seed, progress=progress, **stream)
    validation = RandomisedBrains(templates, pool_size=16, seed=seed + 1, **stream).sample(192)
    val_images = validation["images"][:, :1]
    if init is not None:
        from ..networks.segmenter import load_segmenter

        network = load_segmenter(init)
        features = tuple(torch.load(init, map_location="cpu", weights_only=True).get("features", features))
    else:
        network = build_segmenter(features)
    optimiser = torch.optim.AdamW(network.parameters(), lr=learning_rate, weight_decay=1e-4)
    warmup = max(1, min(200, steps // 10))
    schedule = lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * s / steps))  # noqa: E731
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, schedule)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, batch=True)
    best: dict[str, Any] = {"score": -math.inf}
    start = time.perf_counter()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=steps, desc="segmenter", disable=not progress)
    for step in range(steps):
        network.train()
        batch = train_stream.sample(batch_size)
        x = rank_normalize(batch["images"][:, :1], batch["foreground"][:, None])
        loss = loss_fn(network(x), batch["target"][:, None])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        scheduler.step()
        bar.update()
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if (step + 1) % refresh_every == 0:
            train_stream.refresh(2)
        elapsed = (time.perf_counter() - start) / 60
        last = step + 1 == steps or (max_minutes is not None and elapsed > max_minutes)
        if (step + 1) % validate_every == 0 or last:
            network.eval()
            record = {"step": step + 1, "minutes": round(elapsed, 2), "loss": float(loss.detach())}
            record.update(evaluate_segmenter(network, val_images, validation["target"]))
            tissue = (record["dice_csf"] + record["dice_gm"] + record["dice_wm"]) / 3
            record["score"] = (
                record["dice_lesion"] + 0.5 * tissue - abs(math.log(max(record["lesion_area_ratio"], 1e-3)))
            )
            if log is not None:
                with open(log, "a") as handle:
                    handle.write(json.dumps(record) + "\n")
            if record["score"] > best["score"]:
                best = record
                state = {k: v.detach().clone() for k, v in network.state_dict().items()}
                summary = {
                    **record,
                    "features": list(features),
                    "templates": [Path(t).name for t in templates],
                    "seed": seed,
                    "mimic": mimic,
                    "init": None if init is None else Path(init).name,
                }
                torch.save(
                    {"state_dict": state, "features": list(features), "classes": list(CLASSES), "summary": summary},
                    out,
                )
        if last:
            break
    bar.close()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", required=True, help="checkpoint to write")
    parser.add_argument("--steps", type=int, default=6000, help="optimiser steps")
    parser.add_argument("--batch-size", type=int, default=12, help="slices per step")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    parser.add_argument("--seed", type=int, default=30_000, help="seed of the training stream")
    parser.add_argument("--templates", default=None, help="folder of extra tissue templates (*_tissues_*.nii.gz)")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop after this wall time")
    parser.add_argument("--log", default=None, help="JSON-lines file for validation records")
    parser.add_argument("--init", default=None, help="checkpoint to continue from")
    parser.add_argument("--mimic", type=float, default=0.0, help="share of lesions with a normal tissue's intensity")
    args = parser.parse_args()
    templates = list(available_templates(args.templates).values())
    summary = train_segmenter(
        args.out,
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        templates=templates,
        max_minutes=args.max_minutes,
        log=args.log,
        init=args.init,
        mimic=args.mimic,
    )
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
