"""Two-stage K-CROSS training as ignite workflows with MONAI handlers.

* **Stage 1** trains the complex, structure and tumour encoder/decoders on *real* paired slices (reference,
  source, lesion label) with the frequency, structure, MMD-similarity and tumour losses (all weights 1).
* **Stage 2** freezes them, computes the branch descriptors of every synthesized slice once, and trains the
  score heads against the quality labels with the inconsistency (MSE) loss and random branch dropout, so that
  every subset of branches (the paper's ablations, healthy mode) is calibrated.

Both stages are ignite ``Engine`` runs with MONAI's ``StatsHandler`` and ``CheckpointSaver`` (resumable with
``resume=True``), ignite's ``EarlyStopping`` on the validation loss and a progress bar. Deterministic for a
seed on CPU; on CUDA ``amp=True`` runs the real-valued branches in mixed precision (the complex branch stays in
float32).

Data: a NIRPS-style datalist (:func:`monai_kcross.data.nirps.build_nirps_dataset`): entries with
``synthesized``, ``reference``, ``source``, ``label`` paths and the quality label ``q`` in ``[0, 1]``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch
from ignite.engine import Engine, Events
from ignite.handlers import EarlyStopping, ProgressBar
from monai.handlers import CheckpointLoader, CheckpointSaver, StatsHandler
from monai.utils import set_determinism

from ..functional.intensity import to_unit_range
from ..losses.kcross import inconsistency_loss, rating_loss, stage1_losses, within_group_loss
from ..networks.kcross import BRANCHES, KCross, KCrossConfig

__all__ = ["load_split", "simulated_pairs", "spearman", "train_kcross"]


def _load(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.asarray(nib.load(path).dataobj, dtype=np.float32))[None]


HELD_OUT = "held_out"


def split_entries(datalist: str | Path, split: str) -> list[dict[str, Any]]:
    """Entries of one split of a NIRPS-style datalist.

    Besides the datalist's own splits, ``"held_out"`` selects everything on subjects never seen in training or
    validation: the ``test`` split (seen generator architectures) plus the held-out architecture's outputs on the
    test subjects (``test_unseen_generator`` restricted to them) -- unseen generator *and* unseen deformation seeds.
    """
    path = Path(datalist)
    data = json.loads(path.read_text())
    if split == HELD_OUT:
        seen = {e["case"] for key in ("training", "validation") for e in data.get(key, [])}
        unseen = [e for e in data.get("test_unseen_generator", []) if e["case"] not in seen]
        return list(data.get("test", [])) + unseen
    if split not in data or not isinstance(data[split], list):
        splits = [k for k, v in data.items() if isinstance(v, list) and v and isinstance(v[0], dict)]
        raise KeyError(f"split {split!r} not in {path}; available: {[*splits, HELD_OUT]}.")
    return data[split]


def load_split(datalist: str | Path, split: str, limit: int | None = None) -> dict[str, Any]:
    """Slices of one split (see :func:`split_entries`) as unit-range tensors ``(N, 1, H, W)``: synthesized,
    reference, source, lesion, and the labels ``q`` ``(N,)`` with ``case``/``model``/``entries`` lists.

    The reference is mapped onto ``[0, 1]`` by its own range and the synthesized slice with the same map; the
    source by its own range -- exactly the metric's front end.
    """
    path = Path(datalist)
    entries = split_entries(path, split)
    entries = entries[:limit] if limit else entries
    if not entries:
        raise ValueError(f"split {split!r} of {path} is empty.")
    root = path.parent
    stacked: dict[str, Any] = {k: [] for k in ("synthesized", "reference", "source", "lesion")}
    for entry in entries:
        for key in ("synthesized", "reference", "source"):
            stacked[key].append(_load(root / entry[key]))
        stacked["lesion"].append((_load(root / entry["label"]) > 0).float())
    out = {k: torch.stack(v) for k, v in stacked.items()}
    out["synthesized"], out["reference"] = to_unit_range(out["synthesized"], out["reference"], "reference")
    out["source"] = to_unit_range(out["source"], out["source"], "reference")[1]
    out["q"] = torch.tensor([float(e["q"]) for e in entries])
    out["case"] = [e["case"] for e in entries]
    out["model"] = [e.get("model", "") for e in entries]
    out["entries"] = entries
    return out


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    from scipy.stats import spearmanr

    return float(spearmanr(a.cpu().numpy(), b.cpu().numpy()).statistic)


def simulated_pairs(
    pairs: Sequence[tuple[str, str]], n_subjects: int, seed: int = 50_000, slices: int = 2, progress: bool = False
) -> dict[str, torch.Tensor]:
    """Extra real-paired slices for stage 1 from the simulator: for each subject and each ``(source, target)``
    pair, unit-range source and target slices and the lesion mask (subjects disjoint from the NIRPS seeds)."""
    from ..data.synthesis import synthesize_brain
    from ..progress import tqdm

    out: dict[str, list[torch.Tensor]] = {"reference": [], "source": [], "lesion": []}
    contrasts = tuple(sorted({c for pair in pairs for c in pair}))
    jobs = [(s, k) for s in range(n_subjects) for k in range(slices)]
    for subject, index in tqdm(jobs, desc="stage-1 pairs", disable=not progress):
        data = synthesize_brain(seed=seed + subject, lesion=subject % 5 != 4, slice_seed=index, contrasts=contrasts)
        unit = {
            c: to_unit_range(data[c].as_tensor()[None], data[c].as_tensor()[None], "reference")[1][0] for c in contrasts
        }
        for source, target in pairs:
            out["reference"].append(unit[target])
            out["source"].append(unit[source])
            out["lesion"].append((data["label"].as_tensor() > 0).float())
    return {k: torch.stack(v) for k, v in out.items()}


def _unique_cases(split: dict[str, Any]) -> dict[str, torch.Tensor]:
    """One (reference, source, lesion) triple per case: the real paired data of stage 1."""
    seen: dict[str, int] = {}
    for index, case in enumerate(split["case"]):
        seen.setdefault(case, index)
    index = torch.tensor(list(seen.values()))
    return {k: split[k][index] for k in ("reference", "source", "lesion")}


def _batches(n: int, batch_size: int, generator: torch.Generator | None) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    return list(order.split(batch_size))


class _Shuffled:
    """Index batches in a new seeded order every time the engine starts an epoch."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator) -> None:
        self.n, self.batch_size, self.generator = n, batch_size, generator

    def __iter__(self):
        return iter(_batches(self.n, self.batch_size, self.generator))

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)


@dataclass
class _Run:
    """Settings shared by both stages."""

    out: Path
    device: torch.device
    seed: int
    patience: int
    resume: bool
    progress: bool


def _attach_common(engine: Engine, name: str, run: _Run, objects: dict[str, Any]) -> None:
    out, resume, progress = run.out, run.resume, run.progress
    StatsHandler(name=f"kcross.{name}", output_transform=lambda x: x, iteration_log=False).attach(engine)
    saver = CheckpointSaver(save_dir=str(out / name), save_dict=objects, save_interval=1, n_saved=1, file_prefix=name)
    saver.attach(engine)
    if resume:
        existing = sorted((out / name).glob(f"{name}_checkpoint_epoch=*.pt"))
        if existing:
            CheckpointLoader(load_path=str(existing[-1]), load_dict=objects).attach(engine)
    if progress:
        ProgressBar(persist=False).attach(engine, output_transform=lambda x: {"loss": x})


def _keep_best(engine: Engine, network: torch.nn.Module, history: dict[str, Any]) -> Callable[[], None]:
    """Remember the network state of the epoch with the lowest validation loss; the returned call restores it
    (early stopping otherwise leaves the weights of ``patience`` epochs later)."""
    best: dict[str, Any] = {"loss": math.inf, "state": None}

    @engine.on(Events.EPOCH_COMPLETED)
    def remember(engine: Engine) -> None:
        loss = engine.state.metrics["validation_loss"]
        if loss < best["loss"]:
            best["loss"] = loss
            best["state"] = {k: v.detach().clone() for k, v in network.state_dict().items()}
            history["best_epoch"] = engine.state.epoch

    def restore() -> None:
        if best["state"] is not None:
            network.load_state_dict(best["state"])

    return restore


def train_kcross(
    datalist: str | Path,
    out_dir: str | Path,
    config: KCrossConfig | None = None,
    stage1_epochs: int = 15,
    stage2_epochs: int = 400,
    batch_size: int = 8,
    learning_rate: float = 1e-3,
    head_learning_rate: float = 1e-3,
    patience: int = 40,
    branch_dropout: float = 0.5,
    seed: int = 0,
    device: str | torch.device = "cpu",
    amp: bool = False,
    resume: bool = False,
    limit: int | None = None,
    stage1_subjects: int = 0,
    init_from: str | Path | None = None,
    within_subject_weight: float = 0.0,
    progress: bool = True,
) -> dict[str, Any]:
    """Train K-CROSS in two stages; writes ``<out_dir>/model.pt`` and ``training_summary.json``.

    The defaults are the recipe of the shipped bundle (``KCrossConfig.small()``, 15 + 400 epochs with early
    stopping, no extra simulated stage-1 subjects): about 6 minutes on 2 CPU cores for the default NIRPS-style set.
    Each stage keeps the weights of its epoch with the lowest validation loss.

    Args:
        datalist: NIRPS-style datalist (``training`` and ``validation`` splits are used).
        out_dir: output folder (checkpoints of both stages, the final model, the summary).
        config: network sizes (default :meth:`KCrossConfig.small`).
        stage1_epochs, stage2_epochs: epochs of each stage (early stopping may end them sooner).
        batch_size: slices per step (stage 1) -- stage 2 uses 8x larger batches of cached descriptors.
        learning_rate, head_learning_rate: Adam learning rates of the encoders and of the score heads.
        patience: early-stopping patience (epochs without validation improvement).
        branch_dropout: probability of training the heads on a random branch subset instead of all branches.
        seed: seed of everything (weights, shuffling, branch dropout).
        device: ``"cpu"`` or ``"cuda"``.
        amp: mixed precision for the real-valued branches on CUDA.
        resume: continue from the checkpoints in ``out_dir``.
        limit: use only the first ``limit`` entries of each split (quick runs, tests).
        stage1_subjects: extra simulated subjects (two slices each, every contrast pair of the datalist) added
            to the real paired data of stage 1, whose evaluation cases alone are few.
        init_from: start from trained weights (a checkpoint, run or bundle folder; its configuration replaces
            ``config``) -- fine-tuning, e.g. the shipped bundle on your own ratings with ``stage1_epochs=0``
            (keep the encoders, refit the score heads).
        within_subject_weight: weight of :func:`~monai_kcross.losses.within_group_loss` over subjects in stage 2
            (0: the paper's MSE alone), which rewards ranking the images of one subject rather than subjects.
        progress: show progress bars.

    Returns:
        The summary: losses per epoch, validation MSE and Spearman correlation with the labels, sizes, times.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    set_determinism(seed)
    device = torch.device(device)
    if init_from is not None:
        from ..networks.checkpoints import load_kcross

        trained = load_kcross(init_from)
        config = trained.config
        network = KCross(config).to(device)
        network.load_state_dict(trained.state_dict())
    else:
        config = config or KCrossConfig.small()
        network = KCross(config).to(device)
    train, val = load_split(datalist, "training", limit), load_split(datalist, "validation", limit)
    summary: dict[str, Any] = {
        "config": config.to_dict(),
        "seed": seed,
        "within_subject_weight": within_subject_weight,
        "train_entries": len(train["q"]),
        "validation_entries": len(val["q"]),
        "init_from": None if init_from is None else str(init_from),
    }
    autocast = (
        (lambda: torch.autocast("cuda", dtype=torch.float16))
        if amp and device.type == "cuda"
        else contextlib.nullcontext
    )
    run = _Run(out, device, seed, patience, resume, progress)
    extra = None
    if stage1_subjects and stage1_epochs:
        pairs = json.loads(Path(datalist).read_text()).get("pairs") or [
            [config.source_contrast, config.target_contrast]
        ]
        extra = simulated_pairs([tuple(p) for p in pairs], stage1_subjects, progress=progress)
    summary["stage1"] = (
        _stage1(network, train, val, run, stage1_epochs, batch_size, learning_rate, autocast, extra)
        if stage1_epochs
        else {"skipped": True}
    )
    summary["stage2"] = _stage2(
        network,
        train,
        val,
        run,
        stage2_epochs,
        batch_size * 8,
        head_learning_rate,
        branch_dropout,
        within_subject_weight,
    )
    torch.save({"config": config.to_dict(), "state_dict": network.state_dict()}, out / "model.pt")
    (out / "training_summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def stage1_engine(
    network: KCross,
    run: _Run,
    learning_rate: float,
    batch_losses: Callable[[Any], dict[str, torch.Tensor]],
    validation_losses: Callable[[], list[float]],
    history: dict[str, Any],
    after_epoch: Callable[[], None] | None = None,
) -> tuple[Engine, Callable[[], None]]:
    """The stage-1 trainer of both recipes (NIRPS-style datalists and the domain-randomised stream).

    Adam on the encoders, one step per batch (``batch_losses(batch)`` returns :func:`stage1_losses`' dict), the
    mean of ``validation_losses()`` after every epoch in ``engine.state.metrics["validation_loss"]`` and in
    ``history``, then ``after_epoch()``; checkpoints, resume, logging and progress as every stage. Returns the
    engine and a call that restores the weights of the epoch with the lowest validation loss.
    """
    encoders = [p for module in network.encoders() for p in module.parameters()]
    optimiser = torch.optim.Adam(encoders, lr=learning_rate)

    def step(engine: Engine, batch: Any) -> float:
        network.train()
        losses = batch_losses(batch)
        optimiser.zero_grad()
        losses["total"].backward()
        optimiser.step()
        return losses["total"].item()

    engine = Engine(step)

    @engine.on(Events.EPOCH_COMPLETED)
    def validate(engine: Engine) -> None:
        network.eval()
        with torch.no_grad():
            values = validation_losses()
        engine.state.metrics["validation_loss"] = sum(values) / len(values)
        history["loss"].append(float(engine.state.output))
        history["validation_loss"].append(engine.state.metrics["validation_loss"])
        if after_epoch is not None:
            after_epoch()

    restore_best = _keep_best(engine, network, history)
    _attach_common(engine, "stage1", run, {"network": network, "optimizer": optimiser})
    return engine, restore_best


def _stage1(network, train, val, run: _Run, epochs, batch_size, learning_rate, autocast, extra) -> dict[str, Any]:
    device = run.device
    cases, val_cases = _unique_cases(train), _unique_cases(val)
    if extra is not None:
        cases = {k: torch.cat([cases[k], extra[k]]) for k in cases}
    generator = torch.Generator().manual_seed(run.seed)
    history: dict[str, list[float]] = {"loss": [], "validation_loss": []}
    keys = ("source", "reference", "lesion")

    def batch_losses(index: torch.Tensor) -> dict[str, torch.Tensor]:
        with autocast():
            return stage1_losses(network, *(cases[k][index].to(device) for k in keys))

    def validation_losses() -> list[float]:
        return [
            float(stage1_losses(network, *(val_cases[k][i].to(device) for k in keys))["total"])
            for i in _batches(len(val_cases["reference"]), batch_size, None)
        ]

    engine, restore_best = stage1_engine(network, run, learning_rate, batch_losses, validation_losses, history)
    engine.add_event_handler(
        Events.EPOCH_COMPLETED,
        EarlyStopping(run.patience, lambda e: -e.state.metrics["validation_loss"], engine),
    )
    started = time.perf_counter()
    engine.run(_Shuffled(len(cases["reference"]), batch_size, generator), max_epochs=epochs)
    restore_best()
    history["seconds"] = time.perf_counter() - started
    history["cases"] = len(cases["reference"])
    return history


@torch.no_grad()
def _descriptors(network: KCross, split: dict[str, Any], device, batch_size: int = 32) -> dict[str, torch.Tensor]:
    network.eval()
    parts: dict[str, list[torch.Tensor]] = {}
    for index in _batches(len(split["q"]), batch_size, None):
        d = network.descriptors(
            split["synthesized"][index].to(device),
            split["reference"][index].to(device),
            split["source"][index].to(device),
            None,
            BRANCHES,
        )
        for key, value in d.items():
            parts.setdefault(key, []).append(value)
    return {key: torch.cat(value) for key, value in parts.items()}


def _subsets() -> list[tuple[str, ...]]:
    from itertools import combinations

    return [c for r in (1, 2) for c in combinations(BRANCHES, r)]


def _group_ids(cases: Sequence[str]) -> torch.Tensor:
    index = {case: i for i, case in enumerate(dict.fromkeys(cases))}
    return torch.tensor([index[case] for case in cases])


def within_subject_srcc(score: torch.Tensor, labels: torch.Tensor, cases: Sequence[str]) -> float:
    """Mean over subjects of the Spearman correlation of the images of one subject (subjects with >= 3 images)."""
    groups = _group_ids(cases)
    values = [
        spearman(score.reshape(-1)[groups == g], labels.reshape(-1)[groups == g])
        for g in groups.unique()
        if int((groups == g).sum()) >= 3
    ]
    return float(np.mean(values)) if values else float("nan")


def _stage2(
    network, train, val, run: _Run, epochs, batch_size, learning_rate, branch_dropout, within_weight=0.0
) -> dict[str, Any]:
    device = run.device
    started = time.perf_counter()
    for module in network.encoders():
        module.requires_grad_(False)
    cached, val_cached = _descriptors(network, train, device), _descriptors(network, val, device)
    labels, val_labels = train["q"].to(device), val["q"].to(device)
    groups, val_groups = _group_ids(train["case"]).to(device), _group_ids(val["case"]).to(device)

    def objective(out: dict[str, torch.Tensor], target: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
        # the inconsistency loss on the score plus the same error on the penalty scale (score = exp(-penalty)):
        # the second term keeps a gradient where exp(-penalty) underflows for very poor syntheses
        score = out["score"]
        loss = rating_loss(score, target, out["penalty"])
        return loss + within_weight * within_group_loss(score, target, group) if within_weight else loss

    optimiser = torch.optim.Adam(network.score_parameters(), lr=learning_rate, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(run.seed + 1)
    subsets = _subsets()
    history: dict[str, Any] = {
        "loss": [],
        "validation_loss": [],
        "validation_srcc": [],
        "descriptor_seconds": time.perf_counter() - started,
    }

    epoch_losses: list[float] = []

    def step(engine: Engine, index: torch.Tensor) -> float:
        network.train()
        branches: Sequence[str] = BRANCHES
        if torch.rand(1, generator=generator).item() < branch_dropout:
            branches = subsets[int(torch.randint(len(subsets), (1,), generator=generator))]
        batch = {k: v[index.to(v.device)] for k, v in cached.items()}
        index = index.to(labels.device)
        loss = objective(network.heads(batch, branches), labels[index], groups[index])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        epoch_losses.append(loss.item())
        return loss.item()

    engine = Engine(step)

    @engine.on(Events.EPOCH_COMPLETED)
    def validate(engine: Engine) -> None:
        network.eval()
        with torch.no_grad():
            out = network.heads(val_cached, BRANCHES)
        score = out["score"]
        engine.state.metrics["validation_loss"] = float(objective(out, val_labels, val_groups))
        history["loss"].append(sum(epoch_losses) / len(epoch_losses))  # the epoch's mean batch loss
        epoch_losses.clear()
        history["validation_loss"].append(engine.state.metrics["validation_loss"])
        history["validation_srcc"].append(spearman(score, val_labels))

    restore_best = _keep_best(engine, network, history)
    engine.add_event_handler(
        Events.EPOCH_COMPLETED, EarlyStopping(run.patience, lambda e: -e.state.metrics["validation_loss"], engine)
    )
    _attach_common(engine, "stage2", run, {"network": network, "optimizer": optimiser})
    engine.run(_Shuffled(len(labels), batch_size, generator), max_epochs=epochs)
    restore_best()
    network.eval()
    with torch.no_grad():
        history["validation_srcc_by_branches"] = {
            "+".join(subset): spearman(network.heads(val_cached, subset)["score"], val_labels)
            for subset in [*_subsets(), BRANCHES]
        }
        score = network.heads(val_cached, BRANCHES)["score"]
        history["validation_mse"] = float(inconsistency_loss(score, val_labels))
        history["validation_within_subject_srcc"] = within_subject_srcc(score, val_labels, val["case"])
    history["seconds"] = time.perf_counter() - started
    logging.getLogger("kcross").info("stage 2 done: %s", history["validation_srcc_by_branches"])
    return history
