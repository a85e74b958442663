"""The command line: the demo (sample pair and scored demo set) and the metric listing."""

from __future__ import annotations

import argparse
import subprocess
import sys

import monai_kcross
from monai_kcross.cli import build_parser, main


def test_demo_prints_every_metric_with_three_regions(capsys, tmp_path):
    assert main(["demo", "--out", str(tmp_path), "--subjects", "1"]) == 0
    out = capsys.readouterr().out
    # the scored demo set: every defect a column, K-CROSS rates the erased lesion below the nearly perfect synthesis
    header = next(row for row in out.splitlines() if row.startswith("metric ") and "lesion_removed" in row).split()
    scored_set = out.split("lesion_removed", 1)[1]  # the sample table above it has a kcross row too
    kcross_row = next(row for row in scored_set.splitlines() if row.startswith("kcross ")).split()
    assert float(kcross_row[header.index("lesion_removed")]) < float(kcross_row[header.index("mild_noise")])
    assert (tmp_path / "report.html").is_file() and (tmp_path / "summary.json").is_file()
    for info in monai_kcross.list_metrics():
        line = next(row for row in out.splitlines() if row.startswith(info.name + " "))
        cells = line.split()[4:7]  # after "name", "x is better"
        if info.needs_weights and cells == ["n/a"] * 3:
            assert f"{info.name} needs" in out  # weights absent here: said so, not a crash
            continue
        if not info.masks:  # K-CROSS: the whole volume only, the regions marked as not applicable
            assert 0 < float(cells[0]) <= 1 and cells[1:] == ["-", "-"] and f"{info.name} scores whole" in out
            continue
        assert len([float(v) for v in cells]) == 3
    lesion_ssim = float(next(r for r in out.splitlines() if r.startswith("ssim ")).split()[6])
    brain_ssim = float(next(r for r in out.splitlines() if r.startswith("ssim ")).split()[5])
    assert lesion_ssim < 0.5 < brain_ssim  # the missing lesion is visible only in the lesion region


def test_metrics_listing(capsys):
    assert main(["metrics"]) == 0
    out = capsys.readouterr().out
    assert "haarpsi" in out and "slice-wise" in out and "higher is better" in out


def test_console_entry_point_and_errors():
    torch = __import__("torch")
    done = subprocess.run([sys.executable, "-m", "monai_kcross", "demo", "--device", "cuda:99"], capture_output=True)
    assert done.returncode == 1
    expected = b"CUDA device(s), cuda:0 and up" if torch.cuda.is_available() else b"CUDA is not available"
    assert expected in done.stderr, done.stderr
    bad = subprocess.run([sys.executable, "-m", "monai_kcross", "frobnicate"], capture_output=True)
    assert bad.returncode == 2


def _subparsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _subparsers(child, (*path, name))


def test_every_option_has_help_and_shows_its_default(monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # no line breaks inside the defaults
    checked = 0
    for path, parser in _subparsers(build_parser()):
        text = " ".join(parser.format_help().split())
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
                continue
            assert action.help, f"{' '.join(path)} {action.dest}: no help text"
            shows_default = action.default is not None and not isinstance(action, argparse._StoreTrueAction)
            if shows_default:
                assert f"(default: {action.default})" in text, f"{' '.join(path)} {action.dest}: default not shown"
            checked += 1
    assert checked > 80


def test_kcross_actions_are_subcommands_with_their_own_flags(capsys):
    options = {}
    for path, parser in _subparsers(build_parser()):
        if path[:1] == ("kcross",) and len(path) == 2:
            options[path[1]] = {o for a in parser._actions for o in a.option_strings}
    assert set(options) == {"train", "export", "benchmark"}
    assert "--run" in options["export"] and "--run" not in options["train"] | options["benchmark"]
    assert "--stage2-epochs" in options["train"] and "--stage2-epochs" not in options["benchmark"]
    assert "--split" in options["benchmark"] and "--split" not in options["train"] | options["export"]


def test_unknown_metric_lists_every_valid_metric(capsys, tmp_path):
    assert main(["score", "--reference", str(tmp_path), "--synthesized", str(tmp_path), "--out", str(tmp_path / "o"),
                 "--metrics", "psnr", "frobnicate"]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert "unknown metric 'frobnicate'" in err and "kcross" in err
    assert all(info.name in err for info in monai_kcross.list_metrics())


def test_command_line_starts_without_torch():
    # `--help` and `metrics` must feel instant: torch, MONAI, ignite and scipy are imported by the commands that
    # need them only (measured: 4.3 s -> 0.2-0.5 s wall for `monai-kcross --help` on a loaded 2-core machine)
    code = (
        "import sys\nfrom monai_kcross.cli import main\nmain(['metrics'])\n"
        "try:\n    main(['score', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('HEAVY', sorted(m for m in ('torch', 'monai', 'ignite', 'scipy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout and "haarpsi" in done.stdout and "--layout" in done.stdout
    # the package's names still resolve on first use
    from monai_kcross.analysis import agreement

    assert callable(agreement) and callable(monai_kcross.functional.ssim)
    assert monai_kcross.get_metric_info("ssim").function is monai_kcross.functional.ssim


def test_every_sub_command_dispatches_to_its_runner():
    """Options of a sub-command never shadow its runner (``kcross export --run`` is an option named ``run``)."""
    parser = build_parser()
    argvs = [
        ["demo"],
        ["score", "--reference", "r", "--out", "o"],
        ["agreement", "--scores", "s.csv"],
        ["bundle", "info"],
        ["metrics"],
        ["simulate", "--out", "o"],
        ["nirps", "--out", "o"],
        ["weights", "list"],
        ["kcross", "train", "--datalist", "d", "--out", "o"],
        ["kcross", "export", "--run", "some_run"],
        ["kcross", "benchmark", "--datalist", "d"],
        ["sensitivity"],
    ]
    for argv in argvs:
        args = parser.parse_args(argv)
        assert callable(args.run_command), argv
        assert args.run_command.__module__ == f"monai_kcross.cli.{argv[0]}", argv
