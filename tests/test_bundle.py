"""The shipped K-CROSS bundle: metadata, network in/out, inference and evaluation configs, defaults, export."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys

import monai
import pytest
import torch
from jsonschema import ValidationError, validate
from monai.bundle import ConfigParser, verify_metadata, verify_net_in_out
from monai.transforms import LoadImage

from monai_kcross.bundles import BUNDLE_SCHEMA, KCROSS_BUNDLE, export_bundle
from monai_kcross.cli import main
from monai_kcross.data import read_pair_datalist
from monai_kcross.functional import psnr
from monai_kcross.metrics import KCrossMetric, KCrossScorer, kcross, load_kcross
from monai_kcross.networks import KCross, KCrossConfig

CONFIGS = KCROSS_BUNDLE / "configs"
# the keys MONAI's bundle metadata schema (meta_schema_20240725.json) requires, and those of a tensor description
SCHEMA_REQUIRED = (
    "schema",
    "version",
    "monai_version",
    "pytorch_version",
    "numpy_version",
    "required_packages_version",
    "task",
    "description",
    "authors",
    "copyright",
    "network_data_format",
)
TENSOR_REQUIRED = ("type", "format", "num_channels", "spatial_shape", "dtype", "value_range")


def _parser(config: str, **overrides) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config(CONFIGS / config)
    parser.read_meta(CONFIGS / "metadata.json")
    parser["bundle_root"] = str(KCROSS_BUNDLE)
    for key, value in overrides.items():
        parser[key] = value
    return parser


def test_metadata_follows_the_bundle_schema_and_size_limit():
    # MONAI's own check, offline: the schema copy shipped in the package stands in for the download
    schema = BUNDLE_SCHEMA
    verify_metadata(meta_file=str(CONFIGS / "metadata.json"), filepath=str(schema))
    metadata = json.loads((CONFIGS / "metadata.json").read_text())
    broken = {k: v for k, v in metadata.items() if k != "numpy_version"}
    with pytest.raises(ValidationError, match="numpy_version"):
        validate(broken, json.loads(schema.read_text()))
    assert all(key in metadata for key in SCHEMA_REQUIRED)
    assert (KCROSS_BUNDLE / "LICENSE").is_file()
    assert metadata["version"] in metadata["changelog"]
    for group in ("inputs", "outputs"):
        for tensor in metadata["network_data_format"][group].values():
            assert all(key in tensor for key in TENSOR_REQUIRED)
    assert "not" in metadata["intended_use"] and "radiologist" in metadata["intended_use"]
    size = sum(f.stat().st_size for f in KCROSS_BUNDLE.rglob("*") if f.is_file()) / 2**20
    assert size <= 50
    # weights are plain tensors: they load with weights_only=True
    checkpoint = torch.load(KCROSS_BUNDLE / "models" / "model.pt", weights_only=True)
    assert set(checkpoint) == {"config", "state_dict"}
    network = KCross(KCrossConfig.from_dict(checkpoint["config"]))
    assert metadata["parameters"] == sum(p.numel() for p in network.parameters())


def test_network_in_out_and_default_metric():
    verify_net_in_out(
        net_id="network_def",
        meta_file=str(CONFIGS / "metadata.json"),
        config_file=str(CONFIGS / "inference.json"),
        bundle_root=str(KCROSS_BUNDLE),
        device="cpu",
        n=3,
    )
    network = _parser("inference.json").get_parsed_content("network_def")
    assert isinstance(network, KCrossScorer) and isinstance(network.network, KCross)
    default = KCrossMetric()  # no arguments: the shipped bundle
    assert default.metric_kwargs["network"] is None and load_kcross() is load_kcross(KCROSS_BUNDLE)
    assert isinstance(KCrossMetric.from_bundle().metric_kwargs["network"], KCross)
    network.train()  # workflows toggle modes; the score network must stay in eval()
    assert not network.network.training
    with pytest.raises(ValueError, match=r"expects \(B, 3\|4"):
        network(torch.rand(1, 2, 32, 32))


def _example():
    entries = read_pair_datalist(KCROSS_BUNDLE / "docs" / "example_datalist.json")
    load = LoadImage(image_only=True, ensure_channel_first=True)
    images = {k: torch.stack([load(e[k]) for e in entries]).float() for k in ("synthesized", "reference", "source")}
    return entries, images


def test_inference_config_scores_the_example_datalist(tmp_path):
    parser = _parser("inference.json", output_dir=str(tmp_path))
    parser.get_parsed_content("initialize")
    parser.get_parsed_content("evaluator").run()
    rows = list(csv.reader((tmp_path / "kcross_scores.csv").open()))
    entries, images = _example()
    assert [r[0] for r in rows] == [e["synthesized"] for e in entries]
    expected = kcross(images["synthesized"], images["reference"], images["source"])[:, 0]
    torch.testing.assert_close(torch.tensor([float(r[1]) for r in rows]), expected, atol=1e-5, rtol=0)


def test_evaluate_config_runs_kcross_and_baseline_handlers(tmp_path):
    parser = _parser("evaluate.json", output_dir=str(tmp_path))
    evaluator = parser.get_parsed_content("evaluator")
    evaluator.run()
    metrics = evaluator.state.metrics
    assert {"kcross", "psnr", "ssim", "nlpd", "gmsd", "mae"} <= set(metrics)
    _, images = _example()
    expected = psnr(images["synthesized"], images["reference"], data_range="reference").mean()
    assert metrics["psnr"] == pytest.approx(float(expected), rel=1e-5)
    assert (tmp_path / "kcross_raw.csv").is_file() and (tmp_path / "metrics.csv").is_file()


def test_bundle_command_line_runs_offline(tmp_path):
    command = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        "--config_file",
        str(CONFIGS / "inference.json"),
        "--bundle_root",
        str(KCROSS_BUNDLE),
        "--output_dir",
        str(tmp_path),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len((tmp_path / "kcross_scores.csv").read_text().splitlines()) == 4


def test_export_writes_weights_and_metadata(tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(KCROSS_BUNDLE, bundle)
    torch.manual_seed(0)
    network = KCross(KCrossConfig.small(hidden=32))
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"config": network.config.to_dict(), "state_dict": network.state_dict()}, run / "model.pt")
    (run / "training_summary.json").write_text(json.dumps({"seed": 7}))
    before = json.loads((bundle / "configs" / "metadata.json").read_text())
    export_bundle(run, bundle, changelog="test export", eval_metrics={"srcc": 0.5})
    metadata = json.loads((bundle / "configs" / "metadata.json").read_text())
    major, minor, patch = before["version"].split(".")
    assert metadata["version"] == f"{major}.{minor}.{int(patch) + 1}"
    assert "test export" in metadata["changelog"][metadata["version"]]
    assert metadata["eval_metrics"] == {"srcc": 0.5} and metadata["monai_version"] == monai.__version__
    assert json.loads((bundle / "docs" / "training_summary.json").read_text())["seed"] == 7
    exported = load_kcross(bundle)
    for key, value in network.state_dict().items():
        torch.testing.assert_close(exported.state_dict()[key], value)
    with pytest.raises(FileNotFoundError, match="not a bundle folder"):
        export_bundle(run, tmp_path / "nowhere")
    # the same through the command line, with an explicit version
    assert main(["kcross", "export", "--run", str(run), "--bundle", str(bundle), "--bundle-version", "9.0.0"]) == 0
    assert json.loads((bundle / "configs" / "metadata.json").read_text())["version"] == "9.0.0"


def test_kcross_command_names_missing_arguments(capsys):
    for action, flag in (("benchmark", "--datalist"), ("export", "--run"), ("train", "--datalist")):
        with pytest.raises(SystemExit) as exited:  # exit code 2: bad arguments
            main(["kcross", action])
        assert exited.value.code == 2 and flag in capsys.readouterr().err
