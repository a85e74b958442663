"""The ``agreement`` sub-command: SRCC/KRCC/PLCC/RMSE/inconsistency of ``score`` results against ratings (a
ratings CSV, NIRPS score lists, or another metric of the same table such as downstream Dice)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .common import command


def add_parser(commands: Any) -> None:
    """Add the ``agreement`` parser to the sub-commands."""
    agree = command(commands, "agreement", "SRCC/KRCC/PLCC/RMSE/inconsistency of scores against ratings")
    agree.add_argument("--scores", required=True, help="scores.csv of `monai-kcross score`")
    agree.add_argument("--ratings", help="CSV with case (or path) and rating/score columns")
    agree.add_argument(
        "--ratings-metric",
        help="use this metric of the scores table as the reference instead of a ratings CSV, e.g. seg_dice_lesion "
        "(how well every image metric predicts downstream segmentation; lower-is-better ones are flipped)",
    )
    agree.add_argument("--group-column", help="ratings column to bootstrap by (e.g. subject)")
    agree.add_argument("--lower-is-better", nargs="+", help="metrics outside the registry where lower is better")
    agree.add_argument(
        "--statistics", nargs="+", default=["srcc", "krcc", "plcc", "rmse", "inconsistency"], help="columns shown"
    )
    agree.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the 95 %% intervals")
    agree.add_argument("--out", help="JSON file for the full results")
    agree.set_defaults(run_command=run)


def _match_key(name: str) -> str:
    """A case or file name as agreement matches it: the path without image suffix, ``./`` and backslashes."""
    from ..analysis.cases import case_name

    path = name.strip().replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return str(Path(path).parent / case_name(path)) if "/" in path else case_name(path)


def _read_ratings(path: Path, group_column: str | None) -> dict[str, tuple[float, str | None]]:
    """``{key: (rating, group)}`` from a CSV with a ``path`` or ``case`` column and a rating column (see
    :func:`_match_key`), or a NIRPS ``score, path`` list."""
    import csv

    from ..data.readers import read_quality_scores

    if not path.is_file():
        raise FileNotFoundError(f"ratings file {path} not found.")
    group_column = group_column.strip().lower() if group_column else None
    with open(path, newline="", encoding="utf-8-sig") as handle:  # utf-8-sig: spreadsheets write a BOM
        reader = csv.DictReader(handle, skipinitialspace=True)
        header = [h.strip().lower() for h in reader.fieldnames or []]
        rows = [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    rating_column = next((c for c in ("rating", "score", "mos", "dmos", "label", "quality") if c in header), None)
    name_column = next((c for c in ("path", "case") if c in header), None)  # a path tells NIRPS epochs apart
    if name_column and rating_column:
        records = [(row[name_column], row[rating_column], row) for row in rows]
    else:  # NIRPS 'score, path' lines or a path,score CSV
        records = [(r["path"], r["score"], r) for r in read_quality_scores(path)]
    ratings = {}
    for name, value, row in records:
        if group_column and group_column not in row:
            raise ValueError(f"ratings file {path} has no column {group_column!r}.")
        try:
            ratings[_match_key(name)] = (float(value), row.get(group_column) if group_column else None)
        except ValueError:
            raise ValueError(f"ratings file {path}: rating {value!r} of {name} is not a number.") from None
    return ratings


def _match_cases(scored: set[str], rated: set[str]) -> dict[str, str]:
    """``{scored case: rating key}``: the same path-like name, else the same file name where it is unique on
    both sides (``synth/case1`` rated, ``case1`` scored)."""
    matches = {key: key for key in scored & rated}

    def by_file(keys: set[str]) -> dict[str, str]:
        names: dict[str, list[str]] = {}
        for key in keys:
            names.setdefault(Path(key).name, []).append(key)
        return {name: found[0] for name, found in names.items() if len(found) == 1}

    scored_by_file, rated_by_file = by_file(scored - set(matches)), by_file(rated - set(matches.values()))
    matches |= {scored_by_file[n]: rated_by_file[n] for n in scored_by_file.keys() & rated_by_file.keys()}
    return matches


def run_agreement(args: argparse.Namespace) -> int:
    """The ``agreement`` sub-command: metric scores (``score`` output) against ratings."""
    import csv
    import math

    import numpy as np

    from ..analysis import compare, format_table
    from ..registry import get_metric_info

    if (args.ratings is None) == (args.ratings_metric is None):
        raise ValueError("agreement needs exactly one of --ratings (a ratings CSV) and --ratings-metric (a column).")
    if args.ratings_metric and args.group_column:
        raise ValueError("--group-column reads the ratings CSV; it cannot be used with --ratings-metric.")
    ratings = _read_ratings(Path(args.ratings), args.group_column) if args.ratings else {}
    scores_path = Path(args.scores)
    if not scores_path.is_file():
        raise FileNotFoundError(f"scores file {scores_path} not found.")
    values: dict[str, dict[str, float]] = {}
    unscored = set()
    with open(scores_path, newline="") as handle:
        for row in csv.DictReader(handle):
            if not {"case", "metric", "value"} <= set(row):
                raise ValueError(f"{scores_path} is not a `monai-kcross score` table (case, metric, value).")
            value = float(row["value"])
            if math.isnan(value):  # a metric unfit for the case (its reason is in summary.json)
                unscored.add(_match_key(row["case"]))
            values.setdefault(row["metric"], {})[_match_key(row["case"])] = value
    if args.ratings_metric:  # a metric of the same table is the reference, e.g. downstream-segmentation Dice
        if args.ratings_metric not in values:
            raise ValueError(f"--ratings-metric {args.ratings_metric!r} is not in {scores_path} ({', '.join(values)}).")
        reference = values.pop(args.ratings_metric)
        sign = 1.0 if _higher_is_better(args.ratings_metric, get_metric_info) else -1.0  # higher = better
        ratings = {case: (sign * value, None) for case, value in reference.items() if not math.isnan(value)}
        if not values:
            raise ValueError(f"{scores_path} holds no metric besides {args.ratings_metric!r} to compare with it.")
    complete = set.intersection(*(set(v) for v in values.values())) - unscored if values else set()
    matches = _match_cases(complete, set(ratings))
    cases = sorted(matches)
    if len(cases) < 3:
        raise ValueError(
            f"only {len(cases)} case(s) have both scores and ratings; cases are matched by path or file name."
        )
    lower = set(args.lower_is_better or [])
    table = {}
    for name, by_case in values.items():
        higher = name not in lower and _higher_is_better(name, get_metric_info)
        table[name] = (np.asarray([by_case[c] for c in cases]), higher)
    labels = np.asarray([ratings[matches[c]][0] for c in cases])
    groups = [ratings[matches[c]][1] for c in cases] if args.group_column else None
    comparison = compare(table, labels, n_boot=args.n_boot, groups=groups)
    print(f"{len(cases)} cases with scores and ratings ({len(ratings) - len(cases)} rated cases without scores)")
    if unscored:
        print(f"{len(unscored)} case(s) left out: a metric is NaN for them (reasons in summary.json)")
    print(format_table(comparison, args.statistics))
    if args.out:
        from ..analysis.benchmark import jsonable

        Path(args.out).write_text(json.dumps(jsonable(comparison), indent=1) + "\n")
    return 0


def _higher_is_better(name: str, lookup) -> bool:
    try:
        return lookup(name).higher_is_better
    except ValueError:
        raise ValueError(f"unknown metric {name!r}: name it in --lower-is-better if lower values are better") from None


run = run_agreement
