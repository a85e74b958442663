"""The cases ``monai-kcross score`` scores: reference and synthesized images paired, in the layouts it reads.

Layouts (``layout=``; ``"auto"`` detects them from the ``reference`` argument):

* ``flat`` -- a folder of reference images and a folder of synthesized images, paired by file name;
* ``datalist`` -- a JSON datalist ``{key: [{"reference", "synthesized"[, "source", "mask" | "brain", "label"]}]}``;
* ``nirps`` -- what ``monai-kcross nirps`` writes (its folder or its ``datalist.json``): every listed output of the
  translation models against its reference, with the source, the brain mask as evaluation region and the
  tumour label as lesion mask;
* ``simulate`` -- what ``monai-kcross simulate`` writes (its folder or ``datalist.json``): per subject ``t1``,
  ``t2``, ``pd``, ``flair``, ``seg`` and ``brain``; the reference is the ``contrast`` image (``source_contrast``
  gives the source), the brain mask is the evaluation region, the label the lesion mask;
* ``brats`` -- a BraTS 2021 folder (``<case>/<case>_t2.nii.gz``, ``_seg`` as lesion mask), read by
  :func:`~monai_kcross.data.find_brats_cases`;
* ``ixi`` -- an IXI folder (``IXI002-Guys-0828-T2.nii.gz``), read by :func:`~monai_kcross.data.find_ixi_cases`.

In the ``simulate``, ``brats`` and ``ixi`` layouts the synthesized images come from a folder (searched
recursively) and are paired with a case by the reference's file name (``<case>_t2``) or the case name
(``<case>``); without ``contrast`` it is read from the synthesized names' suffix (``_t2``, ``-T2``).

Pairing is symmetric: references without a synthesized image and synthesized images without a reference are
both listed in :attr:`CaseList.unpaired` (and reported by ``score``); the pairs found are scored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["IMAGE_SUFFIXES", "LAYOUTS", "CaseList", "case_name", "detect_layout", "find_cases"]

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".nhdr", ".dcm")
LAYOUTS = ("auto", "flat", "datalist", "nirps", "simulate", "brats", "ixi")
SIMULATED_CONTRASTS = ("t1", "t2", "pd", "flair")
_BRATS_FILE = re.compile(r"^.+_(t1|t1ce|t2|flair|seg)\.nii(\.gz)?$")
_IXI_FILE = re.compile(r"^IXI\d+-[A-Za-z]+-\d+-(T1|T2|PD|MRA|DTI)\.nii(\.gz)?$")


class CaseList(list):
    """A list of cases (``{"case", "reference", "synthesized"[, "source", "mask", "lesion"]}`` of file paths).

    Attributes:
        unpaired: ``{"reference": [...], "synthesized": [...]}``: reference files without a synthesized image
            and synthesized files without a reference (paths).
        inputs: what was read (layout, resolved paths, datalist key, contrasts): the options that define a run.
    """

    def __init__(self, cases: Sequence[dict[str, str]] = (), unpaired=None, inputs=None) -> None:
        super().__init__(cases)
        self.unpaired: dict[str, list[str]] = unpaired or {"reference": [], "synthesized": []}
        self.inputs: dict[str, Any] = inputs or {}


def case_name(path: str | Path) -> str:
    """The name a file is paired by: its name without the image suffix (``sub-01_T2w.nii.gz`` -> ``sub-01_T2w``)."""
    name = Path(path).name
    for suffix in IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _is_image(path: Path) -> bool:
    return path.is_file() and case_name(path) != path.name


def _image_files(folder: Path, role: str, recursive: bool = False) -> dict[str, Path]:
    """``{case_name: path}`` of the images in ``folder`` (DICOM series folders count as one image)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{role} folder {folder} not found.")
    candidates = sorted(folder.rglob("*") if recursive else folder.iterdir())
    files: dict[str, Path] = {}
    for path in candidates:
        dicom_series = not recursive and path.is_dir() and any(p.suffix.lower() == ".dcm" for p in path.iterdir())
        if not (dicom_series or _is_image(path)):
            continue
        name = case_name(path)
        if name in files:
            raise ValueError(f"{role} folder {folder}: two images named {name!r} ({files[name]}, {path}).")
        files[name] = path
    if not files:
        raise ValueError(f"{role} folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)} or DICOM series).")
    return files


def _datalist_kind(path: Path) -> str:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return "datalist"  # read_pair_datalist names the problem
    if isinstance(data, dict) and "architectures" in data and "pairs" in data:
        return "nirps"
    lists = data.values() if isinstance(data, dict) else [data]
    entries = [e for v in lists if isinstance(v, list) for e in v if isinstance(e, dict)]
    if entries and "reference" not in entries[0] and any(c in entries[0] for c in SIMULATED_CONTRASTS):
        return "simulate"
    return "datalist"


def detect_layout(reference: str | Path) -> str:
    """The layout of ``reference`` (see the module docstring): a JSON file is a datalist (``nirps``/``simulate``
    by its content), a folder with a ``datalist.json`` is that datalist's layout, a folder whose images all follow
    the BraTS or IXI naming is ``brats``/``ixi``, any other folder ``flat``."""
    path = Path(reference)
    if path.is_file():
        return _datalist_kind(path) if path.suffix.lower() == ".json" else "flat"
    if (path / "datalist.json").is_file():
        return _datalist_kind(path / "datalist.json")
    if not path.is_dir():
        return "flat"  # find_cases names the missing folder
    top = [p for p in path.iterdir() if _is_image(p)]
    names = [p.name for p in (top or [p for p in path.rglob("*") if _is_image(p)])]
    for layout, pattern in (("brats", _BRATS_FILE), ("ixi", _IXI_FILE)):
        if names and all(pattern.match(name) for name in names):
            return layout
    return "flat"


def _datalist_path(reference: Path, layout: str) -> Path:
    if reference.is_dir():
        if not (reference / "datalist.json").is_file():
            raise FileNotFoundError(f"{reference} has no datalist.json: not a `monai-kcross {layout}` output folder.")
        return reference / "datalist.json"
    return reference


def _name_cases(cases: list[dict[str, str]], root: Path, by_path: bool = False) -> None:
    """Unique case names: the reference's name, else the synthesized image's name or path, else numbered.

    ``by_path``: the synthesized image's path relative to ``root`` first (a NIRPS image is known by its path
    ``sim/<target>/<model>/epoch_<n>/<case>-slice-<k>``, which its quality labels list).
    """
    namings = [
        lambda c: case_name(c["reference"]),
        lambda c: case_name(c.get("synthesized", "")),
        lambda c: _relative_name(c.get("synthesized", ""), root),
    ]
    for naming in namings[2:] + namings if by_path else namings:
        names = [naming(c) for c in cases]
        if all(names) and len(set(names)) == len(names):
            for case, name in zip(cases, names):
                case["case"] = name
            return
    for number, case in enumerate(cases):  # the same files listed twice
        case["case"] = f"{number:05d}_{case_name(case['reference'])}"


def _relative_name(path: str, root: Path) -> str:
    if not path:
        return ""
    try:
        relative = Path(path).relative_to(root)
    except ValueError:
        relative = Path(path)
    return str(relative.parent / case_name(relative)).replace("\\", "/")


def _from_datalist(path: Path, key: str, by_path: bool = False) -> list[dict[str, str]]:
    from ..data.readers import read_pair_datalist

    cases = []
    for entry in read_pair_datalist(path, key, required=("reference",)):
        case = {"reference": entry["reference"]}
        for source_key, target in (("synthesized", "synthesized"), ("source", "source"), ("label", "lesion")):
            if source_key in entry:
                case[target] = entry[source_key]
        if "mask" in entry or "brain" in entry:  # the evaluation region
            case["mask"] = entry.get("mask", entry.get("brain"))
        cases.append(case)
    _name_cases(cases, path.parent, by_path)
    return cases


def _from_subjects(
    layout: str, reference: Path, key: str, contrast: str | None, source_contrast: str | None, synthesized: Path
) -> tuple[list[dict[str, str]], str]:
    """Cases of the per-subject layouts (``simulate``, ``brats``, ``ixi``), with ``"_names"`` to pair by, and the
    contrast (given or read from the synthesized names)."""
    from ..data.readers import BRATS_MODALITIES, IXI_MODALITIES, find_brats_cases, find_ixi_cases, read_pair_datalist

    choices = {"simulate": SIMULATED_CONTRASTS, "brats": BRATS_MODALITIES, "ixi": IXI_MODALITIES}[layout]
    if contrast is None:
        contrast = _contrast_from_names(layout, choices, _image_files(synthesized, "synthesized", recursive=True))
    for role, name in (("contrast", contrast), ("source contrast", source_contrast)):
        if name is not None and name not in choices:
            raise ValueError(f"{layout} layout: unknown {role} {name!r}; choose from {', '.join(choices)}.")
    wanted = [contrast] + ([source_contrast] if source_contrast else [])
    if layout == "simulate":
        keys = (*SIMULATED_CONTRASTS, "label", "brain")
        subjects = read_pair_datalist(_datalist_path(reference, layout), key, required=wanted, image_keys=keys)
    elif layout == "brats":
        subjects = find_brats_cases(reference, wanted)
    else:
        subjects = find_ixi_cases(reference, wanted)
    cases = []
    for subject in subjects:
        name = str(subject.get("case") or case_name(subject[contrast]))
        case = {"case": name, "reference": subject[contrast], "_names": [case_name(subject[contrast]), name]}
        if source_contrast:
            case["source"] = subject[source_contrast]
        if subject.get("brain"):
            case["mask"] = subject["brain"]
        if subject.get("label"):
            case["lesion"] = subject["label"]
        cases.append(case)
    return cases, contrast


def _contrast_from_names(layout: str, choices: Sequence[str], files: dict[str, Path]) -> str:
    found = set()
    for name in files:
        for choice in choices:
            if re.search(rf"[_-]{re.escape(choice)}$", name, flags=re.IGNORECASE):
                found.add(choice)
    if len(found) != 1:
        seen = f"they end in {', '.join(sorted(found))}" if found else "they name no contrast"
        raise ValueError(
            f"{layout} layout: which contrast do the synthesized images replace? {seen}; pass --contrast "
            f"(contrast=) with one of {', '.join(choices)}."
        )
    return found.pop()


def find_cases(
    reference: str | Path,
    synthesized: str | Path | None = None,
    source: str | Path | None = None,
    mask: str | Path | None = None,
    lesion: str | Path | None = None,
    datalist_key: str = "test",
    layout: str = "auto",
    contrast: str | None = None,
    source_contrast: str | None = None,
) -> CaseList:
    """Cases to score: ``[{"case", "reference", "synthesized"[, "source", "mask", "lesion"]}]`` of file paths.

    Args:
        reference: folder of reference images, a JSON datalist, or the folder of a layout (see the module
            docstring and ``layout``).
        synthesized: folder of synthesized images paired with the references by :func:`case_name`; required with
            a reference folder and the ``simulate``/``brats``/``ixi`` layouts; with a datalist it replaces the
            listed ``synthesized`` paths (paired by the references' names).
        source: folder of source-contrast images (K-CROSS's structure branch), paired by name.
        mask: folder of evaluation-region masks (brain masks): the baselines are computed inside them; it
            replaces a layout's brain masks.
        lesion: folder of lesion masks for K-CROSS (otherwise its segmenter predicts them, or the layout's labels).
        datalist_key: list of the datalist to read (``"all"``: every list).
        layout: ``"auto"`` (detected by :func:`detect_layout`) or one of :data:`LAYOUTS`.
        contrast: per-subject layouts: the contrast the synthesized images replace (default: from their names).
        source_contrast: per-subject layouts: the contrast used as the source image (K-CROSS structure branch).

    Returns:
        A :class:`CaseList`; its ``unpaired`` lists the references without a synthesized image and the
        synthesized images without a reference.

    Raises:
        FileNotFoundError: a folder or a listed file is missing.
        ValueError: no images, no pair at all, two images with one name, a case missing from ``source``,
            ``mask`` or ``lesion`` (the first names are given), an unknown layout or contrast.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}.")
    reference = Path(reference)
    layout = detect_layout(reference) if layout == "auto" else layout
    if (contrast or source_contrast) and layout not in ("simulate", "brats", "ixi"):
        raise ValueError(
            f"--contrast/--source-contrast choose images of the simulate, brats and ixi layouts; {reference} is "
            f"read as {layout}."
        )
    inputs = {
        "layout": layout,
        "reference": str(reference.resolve()),
        "synthesized": str(Path(synthesized).resolve()) if synthesized is not None else None,
        "source": str(Path(source).resolve()) if source is not None else None,
        "mask": str(Path(mask).resolve()) if mask is not None else None,
        "lesion": str(Path(lesion).resolve()) if lesion is not None else None,
        "datalist_key": datalist_key if layout in ("datalist", "nirps", "simulate") else None,
        "contrast": contrast,
        "source_contrast": source_contrast,
    }
    if layout in ("datalist", "nirps"):
        cases = _from_datalist(_datalist_path(reference, layout), datalist_key, by_path=layout == "nirps")
        if synthesized is None and any("synthesized" not in c for c in cases):
            raise ValueError(f"datalist {reference}: entries without 'synthesized'; pass a synthesized folder.")
        for case in cases:
            case["_names"] = [case_name(case["reference"])]
    elif layout in ("simulate", "brats", "ixi"):
        if synthesized is None:
            raise ValueError(f"the {layout} layout holds references only: pass the synthesized images' folder.")
        cases, inputs["contrast"] = _from_subjects(
            layout, reference, datalist_key, contrast, source_contrast, Path(synthesized)
        )
    else:
        if synthesized is None:
            raise ValueError("a synthesized folder is needed with a reference folder.")
        cases = [
            {"case": name, "reference": str(path), "_names": [name]}
            for name, path in _image_files(reference, "reference").items()
        ]
    unpaired: dict[str, list[str]] = {"reference": [], "synthesized": []}
    if synthesized is not None:
        files = _image_files(Path(synthesized), "synthesized", recursive=layout in ("simulate", "brats", "ixi"))
        used = set()
        paired = []
        for case in cases:
            match = next((n for n in case["_names"] if n in files), None)
            if match is None:
                unpaired["reference"].append(case["reference"])
                continue
            used.add(match)
            paired.append({**case, "synthesized": str(files[match])})
        unpaired["synthesized"] = [str(path) for name, path in files.items() if name not in used]
        cases = paired
    for key, folder in (("source", source), ("mask", mask), ("lesion", lesion)):
        if folder is None:
            continue
        files = _image_files(Path(folder), key)
        missing = [c["case"] for c in cases if not any(n in files for n in c["_names"])]
        if missing:
            raise ValueError(f"{key} folder {folder} has no image for case(s) {', '.join(missing[:5])}.")
        for case in cases:
            case[key] = str(files[next(n for n in case["_names"] if n in files)])
    if not cases:
        raise ValueError(
            f"no case to score: no synthesized image matches a reference of {reference} ({layout} layout; "
            f"{_few(unpaired['reference'])} unpaired; synthesized {_few(unpaired['synthesized'])} unpaired); "
            "images are paired by file name."
        )
    return CaseList([{k: v for k, v in c.items() if k != "_names"} for c in cases], unpaired, inputs)


def _few(paths: Sequence[str], n: int = 3) -> str:
    if not paths:
        return "none"
    names = ", ".join(Path(p).name for p in paths[:n])
    return names + (f" and {len(paths) - n} more" if len(paths) > n else "")
