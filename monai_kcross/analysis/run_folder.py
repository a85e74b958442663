"""The files of a scoring run folder: ``scores.csv`` written atomically after each case and read back for
``resume``, ``run.json`` (the options that define the run; a resume with other options is refused), and the
checks before anything is written (an existing run is never overwritten without ``overwrite=True``)."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..registry import get_metric_info

SCORES_HEADER = ("case", "metric", "value", "note", "data_range")


RUN_FILES = ("summary.json", "report.html", "scores.csv", "run.json")  # removed in this order


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and rename it over ``path`` (never a torn file)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def _csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SCORES_HEADER)
    writer.writerows(
        (r["case"], r["metric"], repr(float(r["value"])), r.get("note", ""), r.get("data_range", "")) for r in rows
    )
    return buffer.getvalue()


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                value = float(row["value"])
                note = row.get("note") or ""
                policy = row.get("data_range") or "reference"  # tables written before the column: the default
                rows.append(
                    {"case": row["case"], "metric": row["metric"], "value": value, "note": note, "data_range": policy}
                )
            except (KeyError, TypeError, ValueError):
                continue  # a torn line of an interrupted write
    return rows


def check_output(out: str | Path, resume: bool = False, overwrite: bool = False) -> bool:
    """Check that ``out`` can take a scoring run; return whether it holds one (scores, summary, run.json, parts).

    Raises:
        ValueError: ``out`` (or a folder above it) is a file.
        FileExistsError: ``out`` holds a run and neither ``resume`` nor ``overwrite`` is set.
    """
    out = Path(out)
    for folder in (out, *out.parents):
        if folder.exists() and not folder.is_dir():
            raise ValueError(
                f"--out {out}: {folder} is a file; give a folder (created if missing) for scores.csv, summary.json "
                "and report.html."
            )
    existing = out.is_dir() and (
        any((out / name).exists() for name in RUN_FILES) or any((out / "parts").glob("rank*.csv"))
    )
    if existing and not (resume or overwrite):
        raise FileExistsError(
            f"{out} holds a scoring run: continue it with --resume (resume=True) or start again with --overwrite."
        )
    return existing


_RECORD_ONLY = ("network_source", "monai_kcross", "metrics")


_OLD_REFERENCE = "reference ("  # run.json of earlier versions: "reference (each volume's range; ...)"


def _check_same_run(out: Path, settings: Mapping[str, Any]) -> None:
    """Refuse to resume a run recorded with other options (``run.json``), naming each difference."""
    path = out / "run.json"
    if not path.is_file():
        return  # a run of an earlier version, or interrupted before its first file
    try:
        before = json.loads(path.read_text())
    except ValueError as error:
        raise ValueError(f"{path} is unreadable ({error}); start again with --overwrite.") from error
    differences = []
    for key, now in settings.items():
        if key in _RECORD_ONLY or (key in ("network", "segmenter") and (now is None or before.get(key) is None)):
            continue
        if key == "inputs":
            old_inputs = before.get(key) or {}
            if not (old_inputs and now):  # a list of cases without a record of how it was found
                continue
            pairs = [(f"--{k.replace('_', '-')}", old_inputs.get(k), now.get(k)) for k in {**old_inputs, **now}]
        elif key == "segmenter":
            pairs = [("--segmenter", _describe_segmenter(before.get(key)), _describe_segmenter(now))]
        elif key == "data_range":
            old = before.get(key) or "reference"
            pairs = [("--data-range", "reference" if old.startswith(_OLD_REFERENCE) else old, now)]
        else:
            pairs = [(key if key == "images" else f"--{key.replace('_', '-')}", before.get(key), now)]
        differences += [f"{name} (was {old}, now {new})" for name, old, new in pairs if old != new]
    if differences:
        raise ValueError(
            f"cannot resume the run in {out}: its options differ ({'; '.join(differences)}). Resume with the same "
            "options, or start again with --overwrite or another --out."
        )


def _describe_segmenter(record: Mapping[str, Any]) -> str:
    where = record.get("path") or record.get("object") or "the package's segmenter"
    return f"{where} {record['digest']}" if record.get("digest") else str(where)


def _start(out: Path, settings: Mapping[str, Any], keep: bool) -> None:
    """Prepare ``out``: remove the summary and report first (they would no longer describe ``scores.csv``), and
    unless ``keep`` (resume) the previous scores, record and part files; then write ``run.json``."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name in RUN_FILES[: 2 if keep else None]:
            (out / name).unlink(missing_ok=True)
        if not keep:
            for stale in (out / "parts").glob("rank*.csv"):
                stale.unlink()
        write_atomically(out / "run.json", json.dumps(settings, indent=1) + "\n")
    except OSError as error:
        reason = error.strerror or str(error)
        raise ValueError(f"cannot write to --out {out}: {reason}; choose a writable folder.") from error


def _check_same_policy(out: Path, previous: Sequence[Mapping[str, Any]], policy: str) -> None:
    """Refuse to resume a table whose baseline rows were scored with another intensity policy (also without a
    ``run.json``, e.g. a table copied from elsewhere)."""
    bare = policy.removesuffix("@mask")  # whether a case has a mask is compared with the inputs
    own = {row["metric"] for row in previous if get_metric_info(row["metric"]).own_front_end}  # always "reference"
    other = sorted({row["data_range"] for row in previous if row["metric"] not in own} - {bare, bare + "@mask"})
    if other:
        raise ValueError(
            f"cannot resume the run in {out}: its scores.csv holds scores with --data-range {', '.join(other)}, "
            f"now {policy}. Resume with the same --data-range, or start again with --overwrite or another --out."
        )
