"""The shipped K-CROSS bundle with MONAI's own bundle tools, run from another working folder: metadata, load,
check_properties, verify_net_in_out, ckpt_export, run (inference, evaluation, fine-tuning), defaults, export."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import warnings

import monai
import pytest
import torch
from jsonschema import ValidationError, validate
from monai.bundle import ConfigParser, ConfigWorkflow, ckpt_export, load, verify_metadata, verify_net_in_out
from monai.transforms import LoadImage

import monai_kcross
from monai_kcross.bundles import (
    BUNDLE_SCHEMA,
    KCROSS_BUNDLE,
    KCrossBundleNetwork,
    export_bundle,
    required_packages,
    verify_bundle,
)
from monai_kcross.bundles.verify import sha256
from monai_kcross.cli import main
from monai_kcross.data import read_pair_datalist
from monai_kcross.functional import psnr
from monai_kcross.metrics import KCrossMetric, kcross, load_kcross
from monai_kcross.networks import KCross, KCrossConfig

CONFIGS = KCROSS_BUNDLE / "configs"
CHECKPOINT = KCROSS_BUNDLE / "models" / "model.pt"
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
WORKFLOW_TYPES = {"inference": "inference", "evaluate": "eval", "train": "train"}


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """A working folder that is not the bundle: every MONAI tool below runs from here."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _files(folder) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def _parser(config: str, **overrides) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config(CONFIGS / config)
    parser.read_meta(CONFIGS / "metadata.json")
    parser["bundle_root"] = str(KCROSS_BUNDLE)
    for key, value in overrides.items():
        parser[key] = value
    return parser


def _example(split: str = "test"):
    entries = read_pair_datalist(KCROSS_BUNDLE / "docs" / "example_datalist.json", split)
    load = LoadImage(image_only=True, ensure_channel_first=True)
    keys = ("synthesized", "reference", "source", "label")
    images = {k: torch.stack([load(e[k]) for e in entries]).float() for k in keys}
    return entries, images


def test_metadata_follows_the_bundle_schema_and_size_limit(elsewhere):
    # MONAI's own check, offline: the schema copy shipped in the package stands in for the download
    schema = BUNDLE_SCHEMA
    verify_metadata(meta_file=str(CONFIGS / "metadata.json"), filepath=str(schema))
    metadata = json.loads((CONFIGS / "metadata.json").read_text())
    broken = {k: v for k, v in metadata.items() if k != "numpy_version"}
    with pytest.raises(ValidationError, match="numpy_version"):
        validate(broken, json.loads(schema.read_text()))
    assert all(key in metadata for key in SCHEMA_REQUIRED)
    assert (KCROSS_BUNDLE / "LICENSE").is_file() and (CONFIGS / "logging.conf").is_file()
    assert metadata["version"] in metadata["changelog"]
    for group in ("inputs", "outputs"):
        for tensor in metadata["network_data_format"][group].values():
            assert all(key in tensor for key in TENSOR_REQUIRED)
    assert metadata["network_data_format"]["outputs"]["pred"]["type"] == "score"  # a regression score
    assert metadata["required_packages_version"] == required_packages()  # the package that builds network_def
    assert "not" in metadata["intended_use"] and "radiologist" in metadata["intended_use"]
    size = sum(f.stat().st_size for f in KCROSS_BUNDLE.rglob("*") if f.is_file()) / 2**20
    assert size <= 50
    # weights are plain tensors: they load with weights_only=True; the configs build the network from the
    # metadata's network_config, so it must be the checkpoint's
    checkpoint = torch.load(CHECKPOINT, weights_only=True)
    assert set(checkpoint) == {"config", "state_dict"}
    assert KCrossConfig.from_dict(metadata["network_config"]) == KCrossConfig.from_dict(checkpoint["config"])
    network = KCross(KCrossConfig.from_dict(checkpoint["config"]))
    assert metadata["parameters"] == sum(p.numel() for p in network.parameters())
    # large_files.yml (JSON, which is YAML too) lists the weights with their hashes
    listed = json.loads((KCROSS_BUNDLE / "large_files.yml").read_text())["large_files"]
    assert {e["path"]: e["hash_val"] for e in listed} == {
        f"models/{p.name}": sha256(p) for p in (KCROSS_BUNDLE / "models").glob("*.pt")
    }


def test_bundle_network_is_nan_until_loaded_then_scores_and_fine_tunes_like_kcross():
    checkpoint = torch.load(CHECKPOINT, weights_only=True)
    network = KCrossBundleNetwork(checkpoint["config"])
    _, images = _example()
    x = torch.cat([images["synthesized"], images["reference"], images["source"]], 1)
    with pytest.warns(UserWarning, match="weights are not loaded"):
        assert torch.isnan(network(x)).all()  # never a score from weights that were not loaded
    # state_dict keys are K-CROSS's: the checkpoint's "state_dict" loads as it is
    assert list(network.state_dict()) == list(checkpoint["state_dict"])
    network.load_state_dict(checkpoint["state_dict"])
    expected = kcross(images["synthesized"], images["reference"], images["source"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch.testing.assert_close(network(x), expected, atol=1e-6, rtol=0)
    # training mode with gradients: same scores, gradients only for the score heads
    network.train()
    assert not network.network.training  # batch norm of the encoders stays frozen
    score = network(x)
    torch.testing.assert_close(score.detach(), expected, atol=1e-6, rtol=0)
    score.sum().backward()
    heads = {id(p) for p in network.score_parameters()}
    assert all((p.grad is not None) == (id(p) in heads) for p in network.network.parameters())
    with pytest.raises(ValueError, match="2-D slices"):
        network(torch.rand(1, 3, 32, 32, 8))


def test_monai_load_and_check_properties_from_another_folder(elsewhere):
    before = _files(KCROSS_BUNDLE)
    network = load(
        "kcross_brain_mri",
        bundle_dir=str(KCROSS_BUNDLE.parent),
        workflow_type="inference",
        key_in_ckpt="state_dict",
        device="cpu",
    )
    assert isinstance(network, KCrossBundleNetwork)
    reference = load_kcross()
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(network.network.state_dict()[key], value)
    # the nested checkpoint needs key_in_ckpt="state_dict": without it nothing is copied, and the network says so
    unloaded = load("kcross_brain_mri", bundle_dir=str(KCROSS_BUNDLE.parent), workflow_type="inference", device="cpu")
    assert not unloaded.weights_loaded()
    with pytest.warns(UserWarning, match="key_in_ckpt='state_dict'"):
        assert torch.isnan(unloaded(torch.rand(1, 3, 32, 32))).all()
    for config, workflow_type in WORKFLOW_TYPES.items():
        workflow = ConfigWorkflow(
            config_file=str(CONFIGS / f"{config}.json"),
            workflow_type=workflow_type,
            logging_file=False,
            bundle_root=str(KCROSS_BUNDLE),
        )
        workflow.initialize()
        assert workflow.check_properties() == [], config
    assert _files(KCROSS_BUNDLE) == before  # nothing written into the bundle


def test_verify_net_in_out_and_ckpt_export_to_torchscript(elsewhere):
    for n in (1, 3):  # MONAI checks shapes on network_def without loading weights: NaN scores, and a warning
        with pytest.warns(UserWarning, match="weights are not loaded"):
            verify_net_in_out(
                net_id="network_def",
                meta_file=str(CONFIGS / "metadata.json"),
                config_file=str(CONFIGS / "inference.json"),
                device="cpu",
                n=n,
            )
    ckpt_export(
        net_id="network_def",
        filepath=str(elsewhere / "model.ts"),
        ckpt_file=str(CHECKPOINT),
        meta_file=str(CONFIGS / "metadata.json"),
        config_file=str(CONFIGS / "inference.json"),
        key_in_ckpt="state_dict",
    )
    extra = {"metadata.json": "", "inference.json": ""}
    scripted = torch.jit.load(str(elsewhere / "model.ts"), _extra_files=extra)
    assert (
        json.loads(extra["metadata.json"])["version"] == json.loads((CONFIGS / "metadata.json").read_text())["version"]
    )
    # the TorchScript part: unit-range slices (synthesized, reference, source, lesion); any size and batch,
    # lesions above, below and at the network's smallest lesion, and none
    network = load_kcross()
    generator = torch.Generator().manual_seed(5)
    slices = torch.rand(4, 4, 72, 88, generator=generator)
    slices[:, 3] = 0
    slices[0, 3, 20:40, 30:50] = 1
    slices[1, 3, 5:7, 5:8] = 1  # 6 voxels, below min_lesion
    slices[2, 3].view(-1)[: network.config.min_lesion] = 1  # exactly min_lesion voxels
    with torch.no_grad():
        expected = network(slices[:, 0:1], slices[:, 1:2], slices[:, 2:3], slices[:, 3:4])["score"][:, None]
        torch.testing.assert_close(scripted(slices), expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(scripted(slices[3:]), expected[3:], atol=1e-5, rtol=0)
    with pytest.raises(torch.jit.Error, match="unit-range slices"):
        scripted(slices[:, :3])


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
    expected = kcross(images["synthesized"], images["reference"], images["source"]).mean()
    assert metrics["kcross"] == pytest.approx(float(expected), abs=1e-5)  # the weights CheckpointLoader loaded
    assert (tmp_path / "kcross_raw.csv").is_file() and (tmp_path / "metrics.csv").is_file()


def test_bundle_command_line_runs_from_any_folder_and_writes_there(elsewhere):
    before = _files(KCROSS_BUNDLE)
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(CONFIGS / "inference.json")]
    result = subprocess.run([*command, "--bundle_root", str(KCROSS_BUNDLE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    # outputs default to the working folder, never into the (installed) bundle
    assert len((elsewhere / "kcross_output" / "kcross_scores.csv").read_text().splitlines()) == 4
    assert _files(KCROSS_BUNDLE) == before
    assert "Default logging file" not in result.stderr  # configs/logging.conf exists


def test_train_config_fine_tunes_the_score_heads(elsewhere):
    workflow = ConfigWorkflow(
        config_file=str(CONFIGS / "train.json"),
        workflow_type="train",
        logging_file=False,
        bundle_root=str(KCROSS_BUNDLE),
        epochs=3,
        device="$torch.device('cpu')",
    )
    workflow.initialize()
    workflow.run()
    trainer, evaluator = workflow.trainer, workflow.evaluator
    assert trainer.state.epoch == 3 and {"val_mse", "val_srcc"} <= set(evaluator.state.metrics)
    # the best validation epoch is saved as a K-CROSS checkpoint in the working folder: a run `kcross export` takes
    saved = torch.load(elsewhere / "kcross_finetuned" / "model.pt", weights_only=True)
    assert set(saved) == {"config", "state_dict"}
    start, tuned = load_kcross(), load_kcross(elsewhere / "kcross_finetuned")
    for name in ("complex_net", "structure_net", "tumour_net"):  # frozen encoders
        torch.testing.assert_close(getattr(tuned, name).state_dict(), getattr(start, name).state_dict())
    assert not torch.equal(tuned.natural_head.weight1, start.natural_head.weight1)  # the MonotoneHead trained
    # the saved heads give the best validation MSE that the evaluator logged
    entries, images = _example("validation")
    scores = kcross(images["synthesized"], images["reference"], images["source"], network=tuned)[:, 0]
    ratings = torch.tensor([e["q"] for e in entries])
    assert float(((scores - ratings) ** 2).mean()) == pytest.approx(evaluator.state.best_metric, rel=1e-4)


def test_export_writes_weights_metadata_and_hashes(tmp_path):
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
    assert metadata["required_packages_version"]["monai-kcross"] == monai_kcross.__version__
    assert json.loads((bundle / "docs" / "training_summary.json").read_text())["seed"] == 7
    exported = load_kcross(bundle)
    for key, value in network.state_dict().items():
        torch.testing.assert_close(exported.state_dict()[key], value)
    # the exported bundle passes verify: new hashes in large_files.yml, new network_config for network_def
    assert any("sha256" in check for check in verify_bundle(bundle))
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


def test_default_metric_is_the_shipped_bundle():
    default = KCrossMetric()  # no arguments: the shipped bundle
    assert default.metric_kwargs["network"] is None and load_kcross() is load_kcross(KCROSS_BUNDLE)
    assert isinstance(KCrossMetric.from_bundle().metric_kwargs["network"], KCross)
