"""K-CROSS 1.0 training on domain-randomised data (the recipe of the shipped bundle 1.x).

* **Stage 1** trains the complex, structure and tumour encoder/decoders with the paper's losses (frequency,
  structure + MMD similarity, tumour) on an endless stream of paired slices from
  :class:`~monai_kcross.data.randomised.RandomisedBrains` (two random contrasts of one random anatomy: target and
  source), as an ignite ``Engine`` with MONAI's ``StatsHandler``/``CheckpointSaver`` (resumable).
* **Stage 2** freezes them and fits the monotone score heads on reference/variant pairs
  (:func:`~monai_kcross.data.pairs.build_pairs`) with four terms: the paper's inconsistency (MSE to the
  task-based quality labels), a ranking hinge (every benign variant of a reference penalised less than every
  harmful one), a severity-order hinge (penalties non-decreasing along each graded series) and the within-subject
  term (:func:`~monai_kcross.losses.within_group_loss`, groups = references). Optional NIRPS-style datalists add
  the outputs of real translation models with their labels (MSE and within-subject terms). Random branch dropout
  calibrates every branch subset (the ablations). The weights of the epoch with the lowest validation loss
  (on pairs from other seeds) are kept.

Command line: ``python -m monai_kcross.training.domain_randomised --out run [--stage1-steps N --pairs N
--pairs-cache DIR --pixel-levels N ...]`` (``--help`` lists the options).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.utils import set_determinism

from ..data.pairs import GRADED, build_pairs
from ..data.randomised import RandomisedBrains, available_templates
from ..functional.intensity import to_unit_range
from ..losses.kcross import (
    inconsistency_loss,
    ranking_loss,
    severity_order_loss,
    stage1_losses,
    within_group_loss,
)
from ..networks.kcross import BRANCHES, KCross, KCrossConfig
from .kcross import (
    _attach_common,
    _keep_best,
    _Run,
    _subsets,
    load_split,
    spearman,
    stage1_engine,
    within_subject_srcc,
)

__all__ = ["cached_pairs", "fit_heads", "pairwise_accuracy", "train_kcross_randomised"]

DEFAULT_WEIGHTS = {"mse": 1.0, "rank": 1.0, "order": 1.0, "within": 1.0}


def _stage1(
    network: KCross, stream: RandomisedBrains, run: _Run, steps: int, batch_size: int, learning_rate: float
) -> dict[str, Any]:
    device = run.device
    validation = RandomisedBrains(stream.templates, pool_size=8, shape=stream.shape, seed=stream.seed + 1).sample(
        4 * batch_size, contrasts=2
    )
    history: dict[str, list[float]] = {"loss": [], "validation_loss": []}

    def losses_of(batch: dict[str, Any], index: slice | None = None) -> dict[str, torch.Tensor]:
        images = batch["images"] if index is None else batch["images"][index]
        lesion = batch["lesion"] if index is None else batch["lesion"][index]
        return stage1_losses(
            network, images[:, 1:2].to(device), images[:, 0:1].to(device), lesion[:, None].float().to(device)
        )

    def validation_losses() -> list[float]:
        return [
            float(losses_of(validation, slice(i, i + batch_size))["total"])
            for i in range(0, len(validation["images"]), batch_size)
        ]

    engine, restore_best = stage1_engine(
        network,
        run,
        learning_rate,
        lambda _: losses_of(stream.sample(batch_size, contrasts=2)),
        validation_losses,
        history,
        after_epoch=lambda: stream.refresh(2),
    )
    per_epoch = min(100, steps)
    started = time.perf_counter()
    engine.run(range(per_epoch), max_epochs=max(1, steps // per_epoch))
    restore_best()
    history["seconds"] = time.perf_counter() - started
    return history


@torch.no_grad()
def _descriptors(network: KCross, data: dict[str, Any], device: torch.device, batch_size: int = 16) -> dict:
    network.eval()
    parts: dict[str, list[torch.Tensor]] = {}
    for start in range(0, len(data["q"]), batch_size):
        part = slice(start, start + batch_size)
        # exactly the metric's front end: reference onto [0, 1], synthesized with the same map, source by its own
        synthesized, reference = to_unit_range(data["synthesized"][part], data["reference"][part], "reference")
        source = to_unit_range(data["source"][part], data["source"][part], "reference")[1]
        d = network.descriptors(synthesized.to(device), reference.to(device), source.to(device), None, BRANCHES)
        for key, value in d.items():
            parts.setdefault(key, []).append(value)
    return {key: torch.cat(value) for key, value in parts.items()}


_PER_GROUP = ("reference", "source", "lesion")


def _pack_pairs(pairs: dict[str, Any]) -> dict[str, Any]:
    """A pair set with the images every variant of a reference shares stored once per reference (``group``
    indexes them): the cache file shrinks about fourfold."""
    first = [int(torch.nonzero(pairs["group"] == g)[0]) for g in range(int(pairs["group"].max()) + 1)]
    packed = {k: v for k, v in pairs.items() if k not in _PER_GROUP}
    packed.update({k: pairs[k][first].clone() for k in _PER_GROUP})
    if not all(torch.equal(packed[k][pairs["group"]], pairs[k]) for k in _PER_GROUP):
        raise ValueError("the variants of one reference do not share its reference, source and lesion.")
    return packed


def cached_pairs(
    cache: str | Path | None,
    n_references: int,
    seed: int,
    templates: Sequence[str],
    shape: tuple[int, int],
    segmenter: torch.nn.Module,
    progress: bool = True,
) -> dict[str, Any]:
    """:func:`~monai_kcross.data.pairs.build_pairs`, read from / written to the folder ``cache`` when given.

    Building the pairs (simulation, variants and their task-based labels) takes most of a head refit (20-50
    minutes for 300 + 60 references on 2 CPU cores, against about a minute for the heads). The file name holds
    what the pairs depend on besides the segmenter: the number of references, the seed, the slice shape and the
    template names; the segmenter's parameter checksum is stored in the file and checked on reading.

    Raises:
        ValueError: the cached file was built with another segmenter.
    """

    def build() -> dict[str, Any]:
        return build_pairs(
            n_references, seed=seed, templates=templates, shape=shape, segmenter=segmenter, progress=progress
        )

    if cache is None:
        return build()
    checksum = float(sum(p.detach().double().abs().sum() for p in segmenter.parameters()))
    names = "-".join(sorted(Path(t).name.removesuffix(".gz").removesuffix(".nii") for t in templates))
    path = Path(cache) / f"pairs_n{n_references}_seed{seed}_{shape[0]}x{shape[1]}_{names}.pt"
    if path.is_file():
        stored = torch.load(path, weights_only=True)
        if abs(stored.pop("segmenter_checksum") - checksum) > 1e-6 * max(1.0, checksum):
            raise ValueError(f"{path} was built with another segmenter; delete it or use another pairs cache.")
        return {**stored, **{k: stored[k][stored["group"]] for k in _PER_GROUP}}
    pairs = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**_pack_pairs(pairs), "segmenter_checksum": checksum}, path)
    return pairs


def _series_ids(kinds: Sequence[str]) -> torch.Tensor:
    names = list(GRADED)
    return torch.tensor([names.index(k) if k in names else -1 for k in kinds])


def pairwise_accuracy(score: torch.Tensor, groups: torch.Tensor, harmful: torch.Tensor) -> float:
    """Share of (benign, harmful) pairs of the same group where the benign variant scores higher (ties 0.5)."""
    same = groups[:, None] == groups[None, :]
    pairs = same & ~harmful[:, None] & harmful[None, :]
    if not bool(pairs.any()):
        return float("nan")
    better = (score[:, None] > score[None, :]).float() + 0.5 * (score[:, None] == score[None, :]).float()
    return float(better[pairs].mean())


def _prepare(network: KCross, pairs: dict[str, Any], device: torch.device, offset: int = 0) -> dict[str, Any]:
    """Cached descriptors, labels and grouping of a pair set (groups shifted by ``offset``)."""
    return {
        "descriptors": _descriptors(network, pairs, device),
        "q": pairs["q"].to(device),
        "group": pairs["group"].to(device) + offset,
        "harmful": pairs["harmful"].to(device),
        "series": _series_ids(pairs["kind"]).to(device),
        "level": pairs["level"].to(device),
        "ranked": torch.ones(len(pairs["q"]), dtype=torch.bool, device=device),
    }


def _from_datalist(network: KCross, datalist: str | Path, split: str, device, offset: int) -> dict[str, Any]:
    """A NIRPS-style split as a pair set without ranking information (groups = cases)."""
    data = load_split(datalist, split)
    names = {case: i for i, case in enumerate(dict.fromkeys(data["case"]))}
    n = len(data["q"])
    return {
        "descriptors": _descriptors(network, data, device),
        "q": data["q"].to(device),
        "group": torch.tensor([names[c] for c in data["case"]], device=device) + offset,
        "harmful": torch.zeros(n, dtype=torch.bool, device=device),
        "series": torch.full((n,), -1, device=device),
        "level": torch.zeros(n, device=device),
        "ranked": torch.zeros(n, dtype=torch.bool, device=device),
    }


def _concat(sets: list[dict[str, Any]]) -> dict[str, Any]:
    out = {k: torch.cat([s[k] for s in sets]) for k in sets[0] if k != "descriptors"}
    out["descriptors"] = {k: torch.cat([s["descriptors"][k] for s in sets]) for k in sets[0]["descriptors"]}
    return out


def _objective(
    network: KCross, data: dict[str, Any], index: torch.Tensor, branches: Sequence[str], weights: dict[str, float]
) -> torch.Tensor:
    out = network.heads({k: v[index] for k, v in data["descriptors"].items()}, branches)
    score, penalty = out["score"], out["penalty"]
    q, group = data["q"][index], data["group"][index]
    ranked = data["ranked"][index]
    loss = weights["mse"] * inconsistency_loss(score, q)
    if weights.get("rank") and bool(ranked.any()):
        loss = loss + weights["rank"] * ranking_loss(penalty[ranked], group[ranked], data["harmful"][index][ranked])
    if weights.get("order") and bool(ranked.any()):
        loss = loss + weights["order"] * severity_order_loss(
            penalty[ranked], group[ranked], data["series"][index][ranked], data["level"][index][ranked]
        )
    if weights.get("within"):
        loss = loss + weights["within"] * within_group_loss(score, q, group)
    return loss


def fit_heads(
    network: KCross,
    train: dict[str, Any],
    val: dict[str, Any],
    run: _Run,
    epochs: int = 300,
    groups_per_batch: int = 16,
    learning_rate: float = 3e-3,
    branch_dropout: float = 0.5,
    weights: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Fit the score heads on prepared pair sets (see :func:`_prepare`); batches hold whole groups so that the
    ranking terms see every variant of a reference."""
    weights = {**DEFAULT_WEIGHTS, **(weights or {})}
    for module in network.encoders():
        module.requires_grad_(False)
    optimiser = torch.optim.Adam(network.score_parameters(), lr=learning_rate)
    generator = torch.Generator().manual_seed(run.seed + 1)
    subsets = _subsets()
    group_ids = train["group"].unique()
    members = {int(g): torch.nonzero(train["group"] == g).flatten() for g in group_ids.tolist()}
    history: dict[str, Any] = {"loss": [], "validation_loss": [], "validation_pairwise": [], "validation_srcc": []}

    def batches() -> list[torch.Tensor]:
        order = group_ids[torch.randperm(len(group_ids), generator=generator)]
        chunks = order.split(groups_per_batch)
        return [torch.cat([members[int(g)] for g in chunk]) for chunk in chunks]

    class _Epoch:
        def __iter__(self):
            return iter(batches())

        def __len__(self) -> int:
            return -(-len(group_ids) // groups_per_batch)

    def step(engine: Engine, index: torch.Tensor) -> float:
        network.train()
        branches: Sequence[str] = BRANCHES
        if torch.rand(1, generator=generator).item() < branch_dropout:
            branches = subsets[int(torch.randint(len(subsets), (1,), generator=generator))]
        loss = _objective(network, train, index, branches, weights)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        return loss.item()

    engine = Engine(step)
    everything = torch.arange(len(val["q"]), device=val["q"].device)

    @engine.on(Events.EPOCH_COMPLETED)
    def validate(engine: Engine) -> None:
        network.eval()
        with torch.no_grad():
            loss = float(_objective(network, val, everything, BRANCHES, weights))
            score = network.heads(val["descriptors"], BRANCHES)["score"]
        engine.state.metrics["validation_loss"] = loss
        history["loss"].append(float(engine.state.output))
        history["validation_loss"].append(loss)
        ranked = val["ranked"]
        history["validation_pairwise"].append(
            pairwise_accuracy(score[ranked], val["group"][ranked], val["harmful"][ranked])
        )
        history["validation_srcc"].append(spearman(score, val["q"]))

    restore_best = _keep_best(engine, network, history)
    _attach_common(engine, "stage2", run, {"network": network, "optimizer": optimiser})
    started = time.perf_counter()
    engine.run(_Epoch(), max_epochs=epochs)
    restore_best()
    network.eval()
    with torch.no_grad():
        ranked = val["ranked"]
        history["validation_by_branches"] = {}
        for subset in [*_subsets(), BRANCHES]:
            score = network.heads(val["descriptors"], subset)["score"]
            history["validation_by_branches"]["+".join(subset)] = {
                "pairwise": pairwise_accuracy(score[ranked], val["group"][ranked], val["harmful"][ranked]),
                "srcc": spearman(score, val["q"]),
            }
        score = network.heads(val["descriptors"], BRANCHES)["score"]
        history["validation_within_group_srcc"] = within_subject_srcc(score, val["q"], val["group"].tolist())
    history["seconds"] = time.perf_counter() - started
    return history


def train_kcross_randomised(
    out_dir: str | Path,
    config: KCrossConfig | None = None,
    stage1_steps: int = 3000,
    stage1_batch: int = 8,
    stage1_shape: tuple[int, int] = (96, 96),
    pairs: int = 400,
    val_pairs: int = 80,
    pairs_shape: tuple[int, int] = (112, 128),
    stage2_epochs: int = 300,
    learning_rate: float = 1e-3,
    head_learning_rate: float = 3e-3,
    branch_dropout: float = 0.5,
    weights: dict[str, float] | None = None,
    datalist: str | Path | None = None,
    templates: Sequence[str] | None = None,
    segmenter: str | Path | None = None,
    pairs_cache: str | Path | None = None,
    pixel_levels: int | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    resume: bool = False,
    init_from: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train K-CROSS 1.0 (see the module docstring); writes ``<out_dir>/model.pt`` and ``training_summary.json``.

    Args:
        out_dir: output folder.
        config: network sizes (default :meth:`KCrossConfig.small`).
        stage1_steps, stage1_batch: stage-1 optimiser steps and slices per step (0 steps: keep the encoders of
            ``init_from``).
        stage1_shape: stage-1 slice size (crops centred on the brain or its lesion).
        pairs, val_pairs: references for the stage-2 training and validation pair sets (about 25 variants each);
            ``pairs=0`` stops after stage 1.
        pairs_shape: slice size of the pairs.
        stage2_epochs: epochs over the training pairs (the best validation epoch is kept).
        learning_rate, head_learning_rate: Adam learning rates of the encoders and of the heads.
        branch_dropout: probability of fitting a random branch subset instead of all branches.
        weights: stage-2 loss weights ``{"mse", "rank", "order", "within"}`` (default 1 each).
        datalist: optional NIRPS-style datalist whose ``training``/``validation`` splits join stage 2.
        templates: tissue templates of the generator (default :func:`available_templates`).
        segmenter: segmenter checkpoint for the lesion branch and the quality labels (default: shipped).
        pairs_cache: folder that keeps the built pair sets between runs (:func:`cached_pairs`).
        pixel_levels: scales of the image-level structure deviations (``KCrossConfig.pixel_levels``; default:
            that of ``init_from`` or of ``config``). When it changes the size of ``init_from``'s heads, only its
            encoders are kept and the heads are fitted from their initialisation.
        seed: seed of everything.
        device: ``"cpu"`` or ``"cuda"``.
        resume: continue stage 1 from its checkpoints in ``out_dir``.
        init_from: start from a trained K-CROSS (checkpoint, run or bundle folder).
        progress: progress bars.
    """
    from ..networks.checkpoints import load_kcross
    from ..networks.segmenter import load_segmenter, segment_probabilities

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    set_determinism(seed)
    device = torch.device(device)
    seg_network = load_segmenter(segmenter, device=device)

    def lesion_finder(image: torch.Tensor, foreground: torch.Tensor | None = None) -> torch.Tensor:
        return segment_probabilities(image, foreground, seg_network)

    if init_from is not None:
        trained = load_kcross(init_from)
        config = trained.config if pixel_levels is None else replace(trained.config, pixel_levels=pixel_levels)
        network = KCross(config, segmenter=lesion_finder).to(device)
        if config.structure_dim == trained.config.structure_dim:
            network.load_state_dict(trained.state_dict())
        else:  # new head sizes: keep the encoders only
            for mine, theirs in zip(network.encoders(), trained.encoders()):
                mine.load_state_dict(theirs.state_dict())
    else:
        config = config or KCrossConfig.small()
        if pixel_levels is not None:
            config = replace(config, pixel_levels=pixel_levels)
        network = KCross(config, segmenter=lesion_finder).to(device)
    templates = list(templates or available_templates().values())
    run = _Run(out, device, seed, patience=10**9, resume=resume, progress=progress)
    summary: dict[str, Any] = {
        "version": "1.0",
        "config": config.to_dict(),
        "seed": seed,
        "templates": [Path(t).name for t in templates],
        "segmenter": None if segmenter is None else Path(segmenter).name,
        "weights": {**DEFAULT_WEIGHTS, **(weights or {})},
    }
    if stage1_steps:
        pool = max(2, min(24, stage1_steps // 50))
        stream = RandomisedBrains(templates, pool_size=pool, shape=stage1_shape, seed=seed + 11, progress=progress)
        summary["stage1"] = _stage1(network, stream, run, stage1_steps, stage1_batch, learning_rate)
    else:
        summary["stage1"] = {"skipped": True}
    if not pairs:  # stage 1 only (stage 2 later with init_from=out_dir, stage1_steps=0)
        torch.save(
            {"config": config.to_dict(), "state_dict": network.state_dict(), "summary": summary}, out / "model.pt"
        )
        (out / "training_summary.json").write_text(json.dumps(summary, indent=1, default=str))
        return summary
    started = time.perf_counter()
    kwargs = {"templates": templates, "segmenter": seg_network, "progress": progress, "shape": pairs_shape}
    train_pairs = cached_pairs(pairs_cache, pairs, seed=seed + 70_000, **kwargs)
    val_set = cached_pairs(pairs_cache, val_pairs, seed=seed + 80_000, **kwargs)
    train_sets = [_prepare(network, train_pairs, device)]
    val_sets = [_prepare(network, val_set, device)]
    if datalist is not None:
        train_sets.append(_from_datalist(network, datalist, "training", device, offset=10**6))
        val_sets.append(_from_datalist(network, datalist, "validation", device, offset=10**6))
    summary["pairs"] = {
        "train_variants": len(train_pairs["q"]),
        "val_variants": len(val_set["q"]),
        "kinds": sorted(set(train_pairs["kind"])),
        "seconds": time.perf_counter() - started,
    }
    summary["stage2"] = fit_heads(
        network,
        _concat(train_sets),
        _concat(val_sets),
        run,
        stage2_epochs,
        learning_rate=head_learning_rate,
        branch_dropout=branch_dropout,
        weights=weights,
    )
    torch.save({"config": config.to_dict(), "state_dict": network.state_dict(), "summary": summary}, out / "model.pt")
    (out / "training_summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--stage1-steps", type=int, default=3000, help="stage-1 steps (0: keep --init-from's)")
    parser.add_argument("--stage1-batch", type=int, default=8, help="slices per stage-1 step")
    parser.add_argument("--pairs", type=int, default=400, help="references of the stage-2 training set")
    parser.add_argument("--val-pairs", type=int, default=80, help="references of the stage-2 validation set")
    parser.add_argument("--stage2-epochs", type=int, default=300, help="stage-2 epochs")
    parser.add_argument("--datalist", default=None, help="optional NIRPS-style datalist for stage 2")
    parser.add_argument("--templates", default=None, help="folder of extra tissue templates")
    parser.add_argument("--segmenter", default=None, help="segmenter checkpoint (default: shipped)")
    parser.add_argument("--pairs-cache", default=None, help="folder keeping built pair sets between runs")
    parser.add_argument("--pixel-levels", type=int, default=None, help="scales of the image-level structure terms")
    parser.add_argument("--init-from", default=None, help="trained K-CROSS to start from")
    parser.add_argument("--seed", type=int, default=0, help="seed")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--resume", action="store_true", help="resume stage 1 from out/")
    args = parser.parse_args()
    summary = train_kcross_randomised(
        args.out,
        stage1_steps=args.stage1_steps,
        stage1_batch=args.stage1_batch,
        pairs=args.pairs,
        val_pairs=args.val_pairs,
        stage2_epochs=args.stage2_epochs,
        datalist=args.datalist,
        templates=list(available_templates(args.templates).values()),
        segmenter=args.segmenter,
        pairs_cache=args.pairs_cache,
        pixel_levels=args.pixel_levels,
        init_from=args.init_from,
        seed=args.seed,
        device=args.device,
        resume=args.resume,
    )
    print(json.dumps(summary["stage2"].get("validation_by_branches", {}), indent=1))


if __name__ == "__main__":
    main()
