"""Readers for the real data layouts K-CROSS was built on: BraTS 2021, IXI, and NIRPS-style score lists.

They only index files (no image is loaded), returning MONAI-style lists of dicts that ``LoadImaged`` and the
package's metrics and datasets consume directly.
"""

from __future__ import annotations

import csv
import json
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["find_brats_cases", "find_ixi_cases", "parse_nirps_path", "read_pair_datalist", "read_quality_scores"]

BRATS_MODALITIES = ("t1", "t1ce", "t2", "flair")
IXI_MODALITIES = ("T1", "T2", "PD")
_NIFTI = (".nii.gz", ".nii")


def find_brats_cases(root: str | Path, modalities: Sequence[str] = ("t1", "t2", "flair")) -> list[dict[str, Any]]:
    """Index a BraTS 2021 folder: one entry per case with the requested modalities and the segmentation.

    Expects files named ``<case>_<modality>.nii.gz`` (``t1``, ``t1ce``, ``t2``, ``flair``) and
    ``<case>_seg.nii.gz`` (labels 1 NCR, 2 ED, 4 ET), in per-case folders or flat.

    Returns:
        ``[{"case": "BraTS2021_00000", "t1": path, ..., "label": path or None}, ...]`` sorted by case id.

    Raises:
        ValueError: unknown modality, or cases that lack a requested modality (named in the message).
        FileNotFoundError: the folder does not exist or holds no BraTS image.
    """
    unknown = [m for m in modalities if m not in BRATS_MODALITIES]
    if unknown:
        raise ValueError(f"unknown BraTS modalities {unknown}; choose from {BRATS_MODALITIES}.")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"BraTS folder {root} does not exist.")
    pattern = re.compile(r"^(?P<case>.+)_(?P<kind>t1|t1ce|t2|flair|seg)\.nii(\.gz)?$")
    cases: dict[str, dict[str, Any]] = {}
    for path in sorted(root.rglob("*.nii*")):
        match = pattern.match(path.name)
        if match:
            key = "label" if match["kind"] == "seg" else match["kind"]
            cases.setdefault(match["case"], {"case": match["case"]})[key] = str(path)
    if not cases:
        raise FileNotFoundError(f"no BraTS files (<case>_t1.nii.gz, ...) found under {root}.")
    incomplete = {c: [m for m in modalities if m not in entry] for c, entry in cases.items()}
    incomplete = {c: missing for c, missing in incomplete.items() if missing}
    if incomplete:
        first = ", ".join(f"{c} lacks {m}" for c, m in list(incomplete.items())[:3])
        raise ValueError(f"{len(incomplete)} BraTS case(s) lack requested modalities: {first}.")
    return [{"case": c, **{m: e[m] for m in modalities}, "label": e.get("label")} for c, e in sorted(cases.items())]


def find_ixi_cases(root: str | Path, modalities: Sequence[str] = IXI_MODALITIES) -> list[dict[str, Any]]:
    """Index IXI images (``IXI002-Guys-0828-T1.nii.gz``, any sub-folders) and pair them by subject.

    Subjects that lack one of the requested modalities are skipped with a warning (IXI is not complete).

    Returns:
        ``[{"case": "IXI002-Guys-0828", "subject": "IXI002", "site": "Guys", "T1": path, ...}, ...]``.
    """
    unknown = [m for m in modalities if m not in IXI_MODALITIES]
    if unknown:
        raise ValueError(f"unknown IXI modalities {unknown}; choose from {IXI_MODALITIES}.")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"IXI folder {root} does not exist.")
    pattern = re.compile(r"^(?P<case>(?P<subject>IXI\d+)-(?P<site>[A-Za-z]+)-\d+)-(?P<modality>T1|T2|PD)\.nii(\.gz)?$")
    subjects: dict[str, dict[str, Any]] = {}
    for path in sorted(root.rglob("IXI*.nii*")):
        match = pattern.match(path.name)
        if match:
            entry = subjects.setdefault(
                match["case"], {"case": match["case"], "subject": match["subject"], "site": match["site"]}
            )
            entry[match["modality"]] = str(path)
    if not subjects:
        raise FileNotFoundError(f"no IXI files (IXI<id>-<site>-<n>-T1.nii.gz, ...) found under {root}.")
    complete = [e for e in subjects.values() if all(m in e for m in modalities)]
    skipped = len(subjects) - len(complete)
    if skipped:
        warnings.warn(f"{skipped} IXI subject(s) skipped for lacking one of {list(modalities)}.", stacklevel=2)
    return sorted(complete, key=lambda e: e["case"])


_NIRPS_PATH = re.compile(
    r"(?P<dataset>[^/]+)/(?P<modality>[^/]+)/(?P<model>[^/]+)/epoch_(?P<epoch>\d+)/(?P<case>.+?)-slice-(?P<slice>\d+)"
    r"(?P<extension>\.[A-Za-z.]+)?$"
)


def parse_nirps_path(path: str) -> dict[str, Any] | None:
    """Split a NIRPS-style path ``.../<dataset>/<modality>/<model>/epoch_<n>/<case>-slice-<k>[.ext]``.

    Returns:
        ``{"dataset", "modality", "model", "epoch", "case", "slice"}`` or ``None`` if the path has another form.
    """
    match = _NIRPS_PATH.search(path.replace("\\", "/"))
    if not match:
        return None
    fields = match.groupdict()
    fields.pop("extension")
    fields["epoch"], fields["slice"] = int(fields["epoch"]), int(fields["slice"])
    return fields


def read_quality_scores(path: str | Path, duplicates: str = "mean") -> list[dict[str, Any]]:
    """Read per-image quality scores from a NIRPS-style list or a CSV.

    Formats (detected per file):

    * NIRPS (the original K-CROSS repository's ``documents/nirps_dataset_human.txt``): lines ``score, path``;
    * CSV with a header containing ``path`` and ``score`` columns (other columns are kept), or header-less
      ``path,score`` lines.

    Args:
        path: the file.
        duplicates: what to do with paths listed more than once (the NIRPS list repeats 5,000 of its 12,500
            lines): ``"mean"`` (average, default), ``"first"``, ``"last"`` or ``"error"``.

    Returns:
        One dict per unique path, in first-seen order: ``{"path", "score", "count"}`` plus the fields of
        :func:`parse_nirps_path` when the path follows that layout, plus extra CSV columns.

    Raises:
        FileNotFoundError: missing file. ValueError: unreadable lines (line number given), duplicates with
        ``duplicates="error"``, or an unknown ``duplicates`` policy.
    """
    if duplicates not in ("mean", "first", "last", "error"):
        raise ValueError(f"duplicates must be 'mean', 'first', 'last' or 'error', got {duplicates!r}.")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"quality score file {path} does not exist.")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = [row for row in csv.reader(handle, skipinitialspace=True) if row and any(c.strip() for c in row)]
    if not rows:
        raise ValueError(f"{path} holds no scores.")
    header = [c.strip().lower() for c in rows[0]]
    records: list[dict[str, Any]] = []
    if "path" in header and "score" in header:
        for number, row in enumerate(rows[1:], start=2):
            record = dict(zip(header, (c.strip() for c in row)))
            records.append({**record, "score": _score(record.get("score", ""), path, number)})
    else:
        for number, row in enumerate(rows, start=1):
            if len(row) < 2:
                raise ValueError(f"{path}:{number}: expected 'score, path' or 'path,score', got {row!r}.")
            first, second = row[0].strip(), row[1].strip()
            if _is_number(first):
                records.append({"path": second, "score": float(first)})
            else:
                records.append({"path": first, "score": _score(second, path, number)})
    merged: dict[str, dict[str, Any]] = {}
    for record in records:
        key = record["path"]
        if key not in merged:
            merged[key] = {**record, "count": 1, "_scores": [record["score"]]}
            continue
        if duplicates == "error":
            raise ValueError(f"{path}: {key} is listed more than once.")
        entry = merged[key]
        entry["count"] += 1
        entry["_scores"].append(record["score"])
    out = []
    for entry in merged.values():
        scores = entry.pop("_scores")
        entry["score"] = {"mean": sum(scores) / len(scores), "first": scores[0], "last": scores[-1]}.get(
            duplicates, scores[0]
        )
        parsed = parse_nirps_path(entry["path"])
        out.append({**entry, **(parsed or {})})
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _score(text: str, path: Path, number: int) -> float:
    if not _is_number(text):
        raise ValueError(f"{path}:{number}: score {text!r} is not a number.")
    return float(text)


PAIR_KEYS = ("synthesized", "reference", "source", "label", "mask", "brain")


def read_pair_datalist(
    path: str | Path,
    key: str = "test",
    base_dir: str | Path | None = None,
    required: Sequence[str] = ("synthesized", "reference"),
    image_keys: Sequence[str] = PAIR_KEYS,
) -> list[dict[str, Any]]:
    """Image pairs to score from a JSON datalist ``{key: [{"synthesized", "reference"[, "source", "label"]}]}``.

    A NIRPS-style datalist (``monai_kcross.data.nirps``) is one; a plain list of such dicts is accepted too.
    Relative paths of the ``image_keys`` (default: ``synthesized``, ``reference``, ``source``, ``label`` = lesion
    mask, ``mask`` and ``brain`` = evaluation region) are resolved against ``base_dir`` (default: the datalist's
    folder); other fields are kept as they are. ``key="all"`` reads every list of the datalist in turn (unless
    it has a list named ``all``).

    Raises:
        FileNotFoundError: the datalist or a listed image is missing (the first missing file is named).
        ValueError: unreadable JSON, a missing or empty ``key`` (the non-empty lists are named), an entry that is
            not an object, an image path that is not a string, or an entry without the ``required`` keys.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"datalist {path} not found.")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"datalist {path} is not valid JSON: {error}.") from error
    lists = {}  # the lists of entries (a NIRPS datalist also holds lists of names)
    if isinstance(data, dict):
        lists = {k: v for k, v in data.items() if isinstance(v, list) and v and all(isinstance(e, dict) for e in v)}
    if isinstance(data, dict):
        if key == "all" and key not in data:
            data = [entry for entries in lists.values() for entry in entries]
        elif key not in data:
            raise ValueError(f"datalist {path} has no {key!r} list; lists of entries: {', '.join(lists) or 'none'}.")
        else:
            data = data[key]
    if not isinstance(data, list):
        raise ValueError(f"datalist {path}: {key!r} is not a list of entries.")
    root = Path(base_dir) if base_dir is not None else path.parent
    entries = []
    for number, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise ValueError(
                f"datalist {path}, entry {number} of {key!r} is {entry!r}, not an object of image paths such as "
                '{"reference": "ref/case1.nii.gz", "synthesized": "syn/case1.nii.gz"}.'
            )
        missing = [k for k in required if k not in entry]
        if missing:
            raise ValueError(f"datalist {path}, entry {number}: missing {missing}.")
        resolved = dict(entry)
        for k in image_keys:
            if k not in entry:
                continue
            if not isinstance(entry[k], str):
                raise ValueError(f"datalist {path}, entry {number}: {k} is {entry[k]!r}, not a file path.")
            resolved[k] = str(root / entry[k])
            if not Path(resolved[k]).is_file():
                raise FileNotFoundError(f"datalist {path}, entry {number}: {k} file {resolved[k]} not found.")
        entries.append(resolved)
    if not entries:
        filled = [f"{k} ({len(v)})" for k, v in lists.items()]
        hint = (
            f"; lists with entries: {', '.join(filled)} (choose one with --datalist-key or key=, or 'all')"
            if filled
            else ""
        )
        raise ValueError(f"datalist {path}: {key!r} is empty{hint}.")
    return entries
