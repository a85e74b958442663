"""``monai-kcross bundle verify`` checks a bundle without running anything from it: malicious bundles are refused
(naming what was refused) and their payloads never run; broken bundles fail with the problem named."""

from __future__ import annotations

import contextlib
import json
import os
import shutil

import pytest
import torch
from monai.bundle import ConfigParser

from monai_kcross.bundles import KCROSS_BUNDLE, verify_bundle
from monai_kcross.cli import main

PAYLOAD = "$torch.os.system('touch PWNED') or torch.nn.Identity()"


class _Pickled:
    """Unpickling this runs ``touch PWNED`` (what a malicious ``model.pt`` does under ``weights_only=False``)."""

    def __reduce__(self):
        return os.system, ("touch PWNED",)


@pytest.fixture
def bundle(tmp_path, monkeypatch):
    """A copy of the shipped bundle, checked from a working folder where a payload's ``touch PWNED`` would land."""
    copy = tmp_path / "bundle"
    shutil.copytree(KCROSS_BUNDLE, copy)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return copy


def _edit_config(bundle, name, edit):
    path = bundle / "configs" / name
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config, indent=1))


def _expression_in_network_def(bundle):
    _edit_config(bundle, "inference.json", lambda c: c.update(network_def=PAYLOAD))
    return "torch.os.system('touch PWNED')"


def _target_in_a_handler(bundle):
    _edit_config(
        bundle, "evaluate.json", lambda c: c["handlers"].append({"_target_": "os.system", "command": "touch PWNED"})
    )
    return "_target_: os.system"


def _macro(bundle):
    _edit_config(bundle, "train.json", lambda c: c.update(loss="%/tmp/elsewhere.json#loss"))
    return "%/tmp/elsewhere.json#loss"


def _metadata_expression(bundle):
    # MONAI reads metadata.json as `_meta_`, and network_def resolves @_meta_#network_config: this would run
    _edit_config(bundle, "metadata.json", lambda c: c["network_config"].update(hidden=PAYLOAD))
    return "torch.os.system('touch PWNED')"


def _logging_args(bundle):
    path = bundle / "configs" / "logging.conf"
    path.write_text(path.read_text().replace("args=(sys.stdout,)", "args=(__import__('os').system('touch PWNED'),)"))
    return "__import__('os').system('touch PWNED')"


def _pickled_weights(bundle):
    torch.save({"config": {}, "state_dict": _Pickled()}, bundle / "models" / "model.pt")
    return "weights_only=True"


def _python_module(bundle):
    (bundle / "scripts").mkdir()
    (bundle / "scripts" / "__init__.py").write_text("import os\nos.system('touch PWNED')\n")
    _edit_config(bundle, "inference.json", lambda c: c["imports"].append("$import scripts"))
    return "scripts/__init__.py"


@pytest.mark.parametrize(
    "attack",
    [
        _expression_in_network_def,
        _target_in_a_handler,
        _metadata_expression,
        _macro,
        _logging_args,
        _pickled_weights,
        _python_module,
    ],
)
def test_verify_refuses_a_malicious_bundle_without_running_it(bundle, attack, capsys):
    named = attack(bundle)
    assert main(["bundle", "verify", "--bundle", str(bundle)]) == 1
    out, error = capsys.readouterr()
    assert named in error and out == ""  # refused before any check is reported as passed
    assert not os.path.exists("PWNED")


@pytest.mark.parametrize("attack", [_expression_in_network_def, _metadata_expression])
def test_the_payload_is_live_monai_would_run_it(bundle, attack):
    # what makes the test above meaningful: parsing the config, as any MONAI bundle tool does, runs the payload
    attack(bundle)
    parser = ConfigParser()
    parser.read_config(bundle / "configs" / "inference.json")
    parser.read_meta(bundle / "configs" / "metadata.json")
    with contextlib.suppress(Exception):  # the network may not build afterwards; the payload has run by then
        parser.get_parsed_content("network_def")
    assert os.path.exists("PWNED")


def test_verify_passes_the_shipped_bundle_and_trust_runs_monais_check(capsys):
    assert main(["bundle", "verify"]) == 0
    out = capsys.readouterr().out
    assert "loads safely" in out and "the package's own (none was run)" in out and "MONAI" not in out
    assert main(["bundle", "verify", "--trust"]) == 0
    assert "--trust: MONAI's verify_net_in_out" in capsys.readouterr().out


def _mismatched_config(bundle):
    path = bundle / "configs" / "metadata.json"
    metadata = json.loads(path.read_text())
    metadata["network_config"]["hidden"] = 64
    path.write_text(json.dumps(metadata))
    return "network_config differs"


def _changed_weights(bundle):
    checkpoint = torch.load(bundle / "models" / "model.pt", weights_only=True)
    checkpoint["state_dict"]["natural_head.bias1"] += 1
    torch.save(checkpoint, bundle / "models" / "model.pt")
    return "sha256 differs"


def _torchscript_file(bundle):
    (bundle / "models" / "model.ts").write_bytes(b"PK")
    return "models/model.ts"


def _schema_violation(bundle):
    path = bundle / "configs" / "metadata.json"
    metadata = json.loads(path.read_text())
    del metadata["numpy_version"]
    path.write_text(json.dumps(metadata))
    return "numpy_version"


def _yaml_config(bundle):
    (bundle / "configs" / "extra.yaml").write_text("a: 1\n")
    return "JSON configs only"


@pytest.mark.parametrize(
    "damage", [_mismatched_config, _changed_weights, _torchscript_file, _schema_violation, _yaml_config]
)
def test_verify_names_what_is_wrong_with_a_broken_bundle(bundle, damage):
    named = damage(bundle)
    with pytest.raises(ValueError, match=named):
        verify_bundle(bundle)
