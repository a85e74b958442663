"""Session-6 head selection for issue 13 (see RUNS.md, "image-level structure terms"): fits the three registered
head candidates on the 1.1.0 encoders and reports the training-side selection figures. Kept verbatim as run
(paths are the ones of that machine): ``python benchmarks/heldout/select_heads_s6.py p0_w1 p4_w1 p4_w5``.
Variant names: ``p<pixel_levels>_w<within-group weight>``. Descriptors are prepared once (about an hour on 2
contended cores) and kept in ``prepared.pt``; each fit takes about 80 s on one thread.
"""

# ruff: noqa
import sys, json, time, torch
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, "/work/main")
from monai_kcross.networks.checkpoints import load_kcross
from monai_kcross.networks.kcross import KCross, BRANCHES
from monai_kcross.networks.segmenter import load_segmenter, segment_probabilities
from monai_kcross.data.randomised import available_templates
from monai_kcross.training.domain_randomised import (
    cached_pairs,
    _prepare,
    _from_datalist,
    _concat,
    fit_heads,
    pairwise_accuracy,
)
from monai_kcross.training.kcross import _Run, within_subject_srcc, spearman

torch.manual_seed(0)
torch.set_num_threads(1)
OUT = Path("/work/runs/diag/select")
OUT.mkdir(exist_ok=True, parents=True)
prepared = OUT / "prepared.pt"
seg = load_segmenter()
finder = lambda image, fg=None: segment_probabilities(image, fg, seg)
base = load_kcross("/work/runs/kcross_v1_bias/model.pt")


def network(levels):
    n = KCross(replace(base.config, pixel_levels=levels), segmenter=finder)
    enc = {
        k: v for k, v in base.state_dict().items() if k.startswith(("complex_net.", "structure_net.", "tumour_net."))
    }
    n.load_state_dict({**n.state_dict(), **enc})
    return n


if not prepared.is_file():
    t = time.time()
    net = network(4).eval()
    kw = {"templates": list(available_templates().values()), "segmenter": seg, "shape": (112, 128), "progress": False}
    sets = {
        "train": _prepare(net, cached_pairs("/work/runs/pairs_cache", 300, 70000, **kw), "cpu"),
        "val": _prepare(net, cached_pairs("/work/runs/pairs_cache", 60, 80000, **kw), "cpu"),
        "nirps_train": _from_datalist(net, "/work/data/nirps_v1/datalist.json", "training", "cpu", 10**6),
        "nirps_val": _from_datalist(net, "/work/data/nirps_v1/datalist.json", "validation", "cpu", 10**6),
    }
    torch.save(sets, prepared)
    print("prepared in", time.time() - t, flush=True)
sets = torch.load(prepared, weights_only=False)


def drop_pixels(s):
    s = dict(s)
    s["descriptors"] = dict(s["descriptors"])
    s["descriptors"]["structure"] = s["descriptors"]["structure"][:, :-12]
    return s


for name in sys.argv[1:]:
    levels, within, extra = name.split("_")[0], name.split("_")[1], name.split("_")[2:]
    levels, within = int(levels[1:]), float(within[1:])
    use = sets if levels == 4 else {k: drop_pixels(v) for k, v in sets.items()}
    net = network(levels)
    run = _Run(OUT / name, torch.device("cpu"), 0, patience=10**9, resume=False, progress=False)
    t = time.time()
    h = fit_heads(
        net,
        _concat([use["train"], use["nirps_train"]]),
        _concat([use["val"], use["nirps_val"]]),
        run,
        300,
        weights={"within": within},
    )
    net.eval()
    with torch.no_grad():
        v, nv = use["val"], use["nirps_val"]
        s = net.heads(v["descriptors"], BRANCHES)["score"]
        ns = net.heads(nv["descriptors"], BRANCHES)["score"]
        nss = net.heads(nv["descriptors"], ("structure",))["score"]
    print(
        json.dumps(
            {
                "variant": name,
                "best_epoch": h["best_epoch"],
                "seconds": round(time.time() - t),
                "rand_val_pairwise": round(pairwise_accuracy(s, v["group"], v["harmful"]), 4),
                "rand_val_srcc": round(spearman(s, v["q"]), 4),
                "nirps_val_within": round(within_subject_srcc(ns, nv["q"], nv["group"].tolist()), 4),
                "nirps_val_pooled": round(spearman(ns, nv["q"]), 4),
                "nirps_val_within_structure": round(within_subject_srcc(nss, nv["q"], nv["group"].tolist()), 4),
            }
        ),
        flush=True,
    )
    torch.save({"config": net.config.to_dict(), "state_dict": net.state_dict()}, OUT / name / "model.pt")
