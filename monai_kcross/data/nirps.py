"""A NIRPS-style dataset of synthesized slices of varying quality, with task-based quality labels.

The K-CROSS paper's NIRPS set holds the outputs of image-translation models (CycleGAN, MUNIT, UNIT) saved after
every training epoch, so that quality runs from poor to good, rated by radiologists. This module builds the
closest honest equivalent offline:

1. simulated paired slices (:func:`~monai_kcross.data.synthesis.synthesize_brain`): training subjects for the
   translation models and a disjoint, fixed evaluation set;
2. real translation models trained for each source -> target pair (default T1->T2, T1->FLAIR, T2->PD), three
   MONAI architectures: ``unet`` (``BasicUNet``, L1 loss), ``attention_unet`` (``AttentionUnet``, L1) and
   ``pix2pix`` (``UNet`` generator with a ``PatchDiscriminator``, least-squares GAN + 25 x L1);
3. after every epoch, every model's output on the evaluation set is saved in the NIRPS layout
   ``sim/<target>/<model>/epoch_<n>/<case>-slice-<k>.nii.gz``;
4. every saved output gets the task-based quality label of :mod:`monai_kcross.data.quality` (NOT a
   radiologist rating), written to ``scores.csv`` and to ``nirps_scores.txt`` (``q, path`` lines in [0, 1] like
   the original repository's list);
5. ``datalist.json`` splits the evaluation subjects into ``training``/``validation``/``test`` for learning a
   metric, and puts every output of the held-out architecture(s) into ``test_unseen_generator`` only.

Intensities: every slice is divided by the 99.5th percentile of its brain voxels (the models' input/output
space); references, sources and synthesized slices are stored in that space.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch

from ..progress import tqdm
from .quality import quality_labels
from .synthesis import synthesize_brain

__all__ = ["ARCHITECTURES", "DEFAULT_PAIRS", "build_nirps_dataset", "normalise_slice"]

DEFAULT_PAIRS = (("t1", "t2"), ("t1", "flair"), ("t2", "pd"))
ARCHITECTURES = ("unet", "attention_unet", "pix2pix")


def normalise_slice(image: torch.Tensor, brain: torch.Tensor) -> torch.Tensor:
    """Divide by the 99.5th percentile of the brain voxels and clip to ``[0, 1.5]``."""
    values = image[brain.bool()]
    scale = torch.quantile(values.float(), 0.995) if values.numel() else image.amax()
    return (image / scale.clamp_min(1e-6)).clamp(0, 1.5)


def _generator_network(name: str) -> torch.nn.Module:
    from monai.networks.nets import AttentionUnet, BasicUNet, UNet

    if name == "unet":
        return BasicUNet(spatial_dims=2, in_channels=1, out_channels=1, features=(16, 16, 32, 64, 128, 16))
    if name == "attention_unet":
        return AttentionUnet(
            spatial_dims=2, in_channels=1, out_channels=1, channels=(16, 32, 64, 128), strides=(2, 2, 2)
        )
    if name == "pix2pix":
        return UNet(
            spatial_dims=2,
            in_channels=1,
            out_channels=1,
            channels=(16, 32, 64, 128),
            strides=(2, 2, 2),
            num_res_units=1,
        )
    raise ValueError(f"unknown architecture {name!r}; choose from {ARCHITECTURES}.")


class _Translator:
    """One source->target model with its optimiser(s); ``epoch`` trains once over the data."""

    def __init__(self, name: str, seed: int, learning_rate: float) -> None:
        torch.manual_seed(seed)
        self.name = name
        self.generator = _generator_network(name)
        self.optimiser = torch.optim.Adam(self.generator.parameters(), lr=learning_rate, betas=(0.5, 0.999))
        self.discriminator = None
        if name == "pix2pix":
            from monai.networks.nets import PatchDiscriminator

            self.discriminator = PatchDiscriminator(
                spatial_dims=2, num_layers_d=3, channels=32, in_channels=2, out_channels=1, norm="INSTANCE"
            )
            self.d_optimiser = torch.optim.Adam(self.discriminator.parameters(), lr=learning_rate, betas=(0.5, 0.999))

    def epoch(self, source: torch.Tensor, target: torch.Tensor, batch_size: int, rng: torch.Generator) -> float:
        self.generator.train()
        losses = []
        for index in torch.randperm(len(source), generator=rng).split(batch_size):
            x, y = source[index], target[index]
            fake = self.generator(x)
            l1 = (fake - y).abs().mean()
            if self.discriminator is None:
                loss = l1
            else:
                d_fake = self.discriminator(torch.cat([x, fake], 1))[-1]
                loss = 25.0 * l1 + ((d_fake - 1) ** 2).mean()
            self.optimiser.zero_grad()
            loss.backward()
            self.optimiser.step()
            if self.discriminator is not None:
                d_real = self.discriminator(torch.cat([x, y], 1))[-1]
                d_fake = self.discriminator(torch.cat([x, fake.detach()], 1))[-1]
                d_loss = 0.5 * (((d_real - 1) ** 2).mean() + (d_fake**2).mean())
                self.d_optimiser.zero_grad()
                d_loss.backward()
                self.d_optimiser.step()
            losses.append(l1.item())
        return float(np.mean(losses))

    @torch.no_grad()
    def predict(self, source: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
        self.generator.eval()
        return torch.cat([self.generator(chunk) for chunk in source.split(batch_size)]).clamp(0, 1.5)


def _simulate(
    seeds: Sequence[int],
    slices: int,
    contrasts: Sequence[str],
    progress: bool,
    desc: str,
    shape: tuple[int, int] | None,
) -> dict[str, Any]:
    """Normalised slices ``(N, 1, H, W)`` per contrast, plus label, brain and case names."""
    out: dict[str, Any] = {c: [] for c in contrasts} | {"label": [], "brain": [], "case": [], "subject": []}
    jobs = [(s, k) for s in seeds for k in range(slices)]
    for seed, index in tqdm(jobs, desc=desc, disable=not progress):
        lesion = seed % 5 != 4  # a fifth of the subjects are healthy
        data = synthesize_brain(
            seed=seed, spatial_dims=2, lesion=lesion, slice_seed=index, contrasts=tuple(contrasts), shape=shape
        )
        brain = data["brain"].as_tensor()
        for contrast in contrasts:
            out[contrast].append(normalise_slice(data[contrast].as_tensor(), brain))
        out["label"].append(data["label"].as_tensor())
        out["brain"].append(brain)
        out["case"].append(f"sim{seed:05d}-slice-{index}")
        out["subject"].append(seed)
    return {k: torch.stack(v) if k not in ("case", "subject") else v for k, v in out.items()}


def _save(array: torch.Tensor, path: Path, dtype: type = np.float32) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    affine = np.diag([1.5, 1.5, 1.5, 1.0])
    nib.save(nib.Nifti1Image(np.asarray(array.squeeze(0).cpu(), dtype=dtype), affine), path)


def build_nirps_dataset(
    out_dir: str | Path,
    pairs: Sequence[tuple[str, str]] = DEFAULT_PAIRS,
    architectures: Sequence[str] = ARCHITECTURES,
    held_out: Sequence[str] = ("attention_unet",),
    n_train_subjects: int = 60,
    train_slices: int = 3,
    n_eval_subjects: int = 30,
    eval_slices: int = 1,
    epochs: int = 12,
    batch_size: int = 16,
    learning_rate: float = 1e-3,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 7,
    segmenter: torch.nn.Module | None = None,
    shape: tuple[int, int] | None = None,
    progress: bool = True,
) -> Path:
    """Train translation models, save their per-epoch outputs, label them and write a datalist.

    Args:
        out_dir: output folder.
        pairs: ``(source, target)`` contrasts; targets must differ (they name the output folders).
        architectures: models to train (see :data:`ARCHITECTURES`).
        held_out: architectures whose outputs only appear in ``test_unseen_generator``.
        n_train_subjects, train_slices: simulated subjects (and slices each) the models learn from.
        n_eval_subjects, eval_slices: the fixed evaluation set, scored after every epoch.
        epochs: training epochs per model (one saved output set per epoch).
        batch_size, learning_rate: optimisation settings.
        fractions: training/validation/test split of the evaluation subjects.
        seed: base seed (training subjects ``seed * 1000 + i``, evaluation subjects ``seed * 1000 + 500 + i``).
        segmenter: network for the quality labels (default: the pretrained one).
        shape: slice shape (default ``(112, 128)``: the whole brain at 1.5 mm); must be divisible by 16.
        progress: show progress bars.

    Returns:
        Path of ``datalist.json``.
    """
    targets = [t for _, t in pairs]
    if len(set(targets)) != len(targets):
        raise ValueError(f"pairs must have distinct targets (they name output folders), got {list(pairs)}.")
    unknown = [a for a in [*architectures, *held_out] if a not in ARCHITECTURES]
    if unknown:
        raise ValueError(f"unknown architectures {unknown}; choose from {ARCHITECTURES}.")
    if n_eval_subjects < 3:
        raise ValueError("n_eval_subjects must be >= 3 (training, validation and test subjects).")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # a fixed order: the simulator draws gain and noise per contrast in order (a set's order depends on the hash seed)
    contrasts = tuple(sorted({c for pair in pairs for c in pair}))
    started = time.perf_counter()
    train = _simulate(
        [seed * 1000 + i for i in range(n_train_subjects)], train_slices, contrasts, progress, "train", shape
    )
    evaluation = _simulate(
        [seed * 1000 + 500 + i for i in range(n_eval_subjects)], eval_slices, contrasts, progress, "eval", shape
    )
    from .builder import split_subjects

    subject_split = dict(zip(sorted(set(evaluation["subject"])), split_subjects(n_eval_subjects, fractions)))
    for index, case in enumerate(evaluation["case"]):
        for contrast in contrasts:
            _save(evaluation[contrast][index], out / "reference" / f"{case}_{contrast}.nii.gz")
        _save(evaluation["label"][index], out / "reference" / f"{case}_seg.nii.gz", np.uint8)
        _save(evaluation["brain"][index], out / "reference" / f"{case}_brain.nii.gz", np.uint8)

    rows: list[dict[str, Any]] = []
    history: dict[str, list[float]] = {}
    rng = torch.Generator().manual_seed(seed)
    for (source, target), name in tqdm(
        [(p, a) for p in pairs for a in architectures], desc="translation models", disable=not progress
    ):
        model = _Translator(name, seed, learning_rate if name != "pix2pix" else learning_rate / 2)
        losses = history.setdefault(f"{source}->{target}/{name}", [])
        for epoch in range(1, epochs + 1):
            losses.append(model.epoch(train[source], train[target], batch_size, rng))
            synthesized = model.predict(evaluation[source])
            labels = quality_labels(
                synthesized, evaluation[target], evaluation["brain"], evaluation["label"], segmenter
            )
            for index, case in enumerate(evaluation["case"]):
                relative = Path("sim") / target / name / f"epoch_{epoch}" / f"{case}.nii.gz"
                _save(synthesized[index], out / relative)
                subject = evaluation["subject"][index]
                split = "test_unseen_generator" if name in held_out else subject_split[subject]
                rows.append(
                    {
                        "path": str(relative),
                        "score": round(labels[index]["score"], 4),
                        "q": round(labels[index]["q"], 4),
                        "level": labels[index]["level"],
                        "lesion": round(labels[index]["lesion"], 4),
                        "contrast": round(labels[index]["contrast"], 4),
                        "anatomy": round(labels[index]["anatomy"], 4),
                        "has_lesion": labels[index]["has_lesion"],
                        "source": source,
                        "target": target,
                        "model": name,
                        "epoch": epoch,
                        "case": case,
                        "subject": subject,
                        "split": split,
                    }
                )
    with open(out / "scores.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "nirps_scores.txt").write_text("".join(f"{r['q']:.4f}, ./{r['path']}\n" for r in rows))
    datalist: dict[str, Any] = {
        "description": (
            "monai-kcross NIRPS-style simulated set: per-epoch outputs of translation models on simulated MRI; "
            "scores are task-based quality labels (monai_kcross.data.quality), not radiologist ratings"
        ),
        "pairs": [list(p) for p in pairs],
        "architectures": list(architectures),
        "held_out": list(held_out),
        "epochs": epochs,
        "build_seconds": round(time.perf_counter() - started, 1),
        "loss_history": history,
        "training": [],
        "validation": [],
        "test": [],
        "test_unseen_generator": [],
    }
    for row in rows:
        case = row["case"]
        datalist[row["split"]].append(
            {
                "synthesized": row["path"],
                "reference": f"reference/{case}_{row['target']}.nii.gz",
                "source": f"reference/{case}_{row['source']}.nii.gz",
                "label": f"reference/{case}_seg.nii.gz",
                "brain": f"reference/{case}_brain.nii.gz",
                "source_contrast": row["source"],
                "target_contrast": row["target"],
                **{k: row[k] for k in ("score", "q", "level", "model", "epoch", "case")},
            }
        )
    path = out / "datalist.json"
    path.write_text(json.dumps(datalist, indent=1))
    return path


def summarise(datalist_path: str | Path) -> dict[str, Any]:
    """Counts, score spread and build time of a built dataset (for notes and the data card)."""
    data = json.loads(Path(datalist_path).read_text())
    summary: dict[str, Any] = {"build_seconds": data.get("build_seconds")}
    for split in ("training", "validation", "test", "test_unseen_generator"):
        scores = [e["score"] for e in data[split]]
        summary[split] = {
            "images": len(scores),
            "score_mean": float(np.mean(scores)) if scores else math.nan,
            "score_min": float(np.min(scores)) if scores else math.nan,
            "score_max": float(np.max(scores)) if scores else math.nan,
        }
    return summary
