"""Checking a K-CROSS bundle without running anything from it (``monai-kcross bundle verify``).

A verify command is what one runs on a bundle one does not trust yet, so nothing in the bundle is executed:

* configs (``metadata.json`` too: MONAI parses it as ``_meta_``) are read as plain JSON; every string MONAI would
  evaluate or resolve when the bundle runs -- ``$`` expressions, ``@`` references, ``%`` macros -- and every
  ``_target_``/``_mode_`` value must be one the package's own bundle uses (the allow-list); ``logging.conf``'s
  ``class``/``args``/``kwargs`` lines likewise;
* no Python code in the bundle folder (``ConfigWorkflow.run`` puts the bundle root on ``sys.path``);
* weights are read with ``torch.load(weights_only=True)`` and loaded into networks built from the package's
  own code, which then runs on an input of the shape the metadata declares;
* ``trust=True`` (``--trust``) additionally runs MONAI's ``verify_net_in_out`` on ``configs/inference.json``,
  which **evaluates** its expressions.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

__all__ = ["config_code", "large_files", "sha256", "verify_bundle"]

_CODE_PREFIXES = ("$", "@", "%")
_CODE_KEYS = ("_target_", "_mode_")
_LOGGING_CODE_KEYS = ("class", "args", "kwargs")
_CODE_SUFFIXES = (".py", ".pyc", ".pyd", ".so", ".pth")
_SHAPE_ITEM = re.compile(r"^\s*(\d+)\s*(\*\s*n)?\s*$")
LARGE_FILES = "large_files.yml"


def sha256(path: Path) -> str:
    """Hex SHA-256 digest of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def large_files(bundle: Path) -> dict[str, Any]:
    """The content of ``large_files.yml`` for the weights in ``bundle/models`` (MONAI Model Zoo format).

    Written as JSON, which is also YAML, so that it reads without a YAML library. There is no download URL:
    the files ship inside the monai-kcross package; ``python -m monai.bundle download_large_files`` (with PyYAML)
    checks their hashes.
    """
    files = sorted(p for p in (bundle / "models").glob("*.pt") if p.is_file())
    return {
        "large_files": [
            {"path": f"models/{p.name}", "url": "", "hash_val": sha256(p), "hash_type": "sha256"} for p in files
        ],
        "note": "these files ship inside the monai-kcross Python package (no separate download); "
        "reinstall monai-kcross to restore a missing one",
    }


def config_code(config: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """``(location, item)`` for every string of a parsed JSON config that MONAI would evaluate or resolve.

    Items are ``$`` expressions, ``@`` references and ``%`` macros as written, and ``"_target_: <value>"`` /
    ``"_mode_: <value>"`` for the values of those keys; ``location`` is the config id (``a#b#0``).
    """
    if isinstance(config, dict):
        for key, value in config.items():
            inner = f"{where}#{key}" if where else str(key)
            if key in _CODE_KEYS:
                yield inner, f"{key}: {value if isinstance(value, str) else json.dumps(value)}"
            else:
                yield from config_code(value, inner)
    elif isinstance(config, list):
        for index, value in enumerate(config):
            yield from config_code(value, f"{where}#{index}" if where else str(index))
    elif isinstance(config, str) and config.startswith(_CODE_PREFIXES):
        yield where, config


def _read_json(path: Path, bundle: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path.relative_to(bundle)} is not plain JSON: {error}") from error


def _logging_code(path: Path) -> Iterator[tuple[str, str]]:
    parser = configparser.RawConfigParser()
    try:
        parser.read_string(path.read_text())
    except configparser.Error as error:
        raise ValueError(f"{path.name} is not a logging configuration: {error}") from error
    for section in parser.sections():
        for key in _LOGGING_CODE_KEYS:
            if parser.has_option(section, key):
                yield f"[{section}] {key}", f"{key}={parser.get(section, key)}"


def _allowed(reference: Path) -> tuple[set[str], set[str]]:
    configs = reference / "configs"
    code = {item for f in sorted(configs.glob("*.json")) for _, item in config_code(json.loads(f.read_text()))}
    logging_file = configs / "logging.conf"
    logging_code = {item for _, item in _logging_code(logging_file)} if logging_file.is_file() else set()
    return code, logging_code


def _check_configs(bundle: Path, reference: Path) -> list[str]:
    """The allow-list check of every file in ``configs/`` (see the module docstring)."""
    allowed, allowed_logging = _allowed(reference)
    count = 0
    for path in sorted((bundle / "configs").iterdir()):
        name = path.relative_to(bundle)
        if not path.is_file():
            continue
        if path.name == "logging.conf":
            for where, item in _logging_code(path):
                if item not in allowed_logging:
                    raise ValueError(
                        f"{name} {where}: {item!r} is not in the package's own logging.conf; refused "
                        "(logging's fileConfig evaluates it)."
                    )
            continue
        if path.suffix != ".json":
            raise ValueError(f"{name}: verify reads JSON configs only and does not check {path.suffix} files.")
        for where, item in config_code(_read_json(path, bundle)):
            count += 1
            if item not in allowed:
                raise ValueError(
                    f"{name}#{where}: {item!r} is not one of the package's own expressions, references or targets; "
                    "refused without running it. Check where the bundle comes from; `--trust` runs MONAI's checks, "
                    "which evaluate the configs."
                )
    return [f"configs: all {count} expressions, references and targets are the package's own (none was run)"]


def _input_shape(metadata: dict[str, Any]) -> tuple[int, ...]:
    image = metadata["network_data_format"]["inputs"]["image"]
    spatial = []
    for item in image["spatial_shape"]:
        match = _SHAPE_ITEM.match(str(item))
        if match is None:
            raise ValueError(f"metadata input spatial_shape item {item!r} is not N or 'N*n'.")
        spatial.append(int(match.group(1)) * (2 if match.group(2) else 1))
    return (1, int(image["num_channels"]), *spatial)


def _check_network(bundle: Path, metadata: dict[str, Any]) -> list[str]:
    """Weights read safely and run through networks built from the package's own code."""
    from ..networks.kcross import KCrossConfig
    from ..networks.segmenter import load_segmenter
    from .workflow import KCrossBundleNetwork

    passed = []
    models = bundle / "models"
    for path in sorted(models.iterdir()):
        if path.suffix != ".pt":
            raise ValueError(
                f"models/{path.name}: not a weights file verify can read safely (TorchScript files are code); "
                "remove it, or make it yourself with ckpt_export from the verified models/model.pt."
            )
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise ValueError(f"models/{path.name} does not load with weights_only=True: {error}") from error
        passed.append(f"models/{path.name} loads safely (weights_only)")
        if path.name == "model.pt":
            if not isinstance(checkpoint, dict) or not {"config", "state_dict"} <= set(checkpoint):
                raise ValueError("models/model.pt is not a K-CROSS checkpoint {'config', 'state_dict'}.")
            if "network_config" not in metadata:
                raise ValueError("metadata.json has no network_config (the configs build the network from it).")
            if KCrossConfig.from_dict(dict(metadata["network_config"])) != KCrossConfig.from_dict(
                dict(checkpoint["config"])
            ):
                raise ValueError(
                    "metadata.json's network_config differs from models/model.pt's config (the configs build the "
                    "network from network_config, so its weights would not load)."
                )
            network = KCrossBundleNetwork(checkpoint["config"])
            try:
                network.load_state_dict(checkpoint["state_dict"])
            except RuntimeError as error:
                raise ValueError(f"models/model.pt does not fit the K-CROSS network: {error}") from error
        elif path.name == "segmenter.pt":
            try:
                load_segmenter(path)
            except RuntimeError as error:
                raise ValueError(f"models/segmenter.pt does not fit the package's segmenter: {error}") from error
    passed.append("models/model.pt: the package's K-CROSS network takes its weights; config matches the metadata")
    shape = _input_shape(metadata)
    output = metadata["network_data_format"]["outputs"]["pred"]
    image = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        score = network(image)
    if score.shape != (shape[0], output["num_channels"]) or str(score.dtype) != f"torch.{output['dtype']}":
        raise ValueError(
            f"network output {tuple(score.shape)} {score.dtype} does not match the metadata "
            f"({output['num_channels']} channels, {output['dtype']})."
        )
    low, high = output.get("value_range") or (-float("inf"), float("inf"))
    if not bool(torch.isfinite(score).all()) or not bool(((score >= low) & (score <= high)).all()):
        raise ValueError(f"network output {score.flatten().tolist()} is not finite within {output['value_range']}.")
    passed.append(f"network on an input {tuple(shape)}: output {tuple(score.shape)} {output['dtype']} as declared")
    return passed


def _check_large_files(bundle: Path) -> str:
    path = bundle / LARGE_FILES
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found.")
    listed = {}
    for entry in _read_json(path, bundle).get("large_files", []):
        target = (bundle / entry["path"]).resolve()
        if bundle.resolve() not in target.parents:
            raise ValueError(f"{LARGE_FILES}: {entry['path']!r} lies outside the bundle.")
        if not target.is_file() or sha256(target) != entry.get("hash_val"):
            raise ValueError(f"{LARGE_FILES}: {entry['path']} is missing or its sha256 differs from the listed one.")
        listed[entry["path"]] = entry
    missing = sorted(f"models/{p.name}" for p in (bundle / "models").glob("*.pt") if f"models/{p.name}" not in listed)
    if missing:
        raise ValueError(f"{LARGE_FILES} does not list {missing}.")
    return f"{LARGE_FILES}: sha256 of {sorted(listed)} match"


def verify_bundle(
    bundle: str | Path | None = None,
    schema: str | Path | None = None,
    trust: bool = False,
    reference: str | Path | None = None,
    max_mb: float | None = None,
) -> list[str]:
    """Check a K-CROSS bundle offline without running anything from it; returns the checks passed.

    Args:
        bundle: bundle folder (default: the one shipped with the package).
        schema: MONAI's metadata schema (default: the copy shipped with the package).
        trust: also run MONAI's ``verify_net_in_out`` on ``configs/inference.json`` (it evaluates the config).
        reference: bundle whose configs form the allow-list (default: the package's own).
        max_mb: size limit of the bundle folder (default: ``MAX_BUNDLE_MB``, 50).

    Raises:
        FileNotFoundError: a missing metadata, config, schema or weights file (named).
        ValueError: a failed check, naming the file and, for refused code, the expression.
    """
    from jsonschema import ValidationError, validate

    from . import BUNDLE_SCHEMA, KCROSS_BUNDLE, MAX_BUNDLE_MB

    bundle = Path(bundle) if bundle is not None else KCROSS_BUNDLE
    schema = Path(schema) if schema is not None else BUNDLE_SCHEMA
    reference = Path(reference) if reference is not None else KCROSS_BUNDLE
    metadata_file = bundle / "configs" / "metadata.json"
    if not metadata_file.is_file():
        raise FileNotFoundError(f"{metadata_file} not found: {bundle} is not a bundle folder.")
    for required in (schema, bundle / "configs" / "inference.json", bundle / "models" / "model.pt"):
        if not required.is_file():
            raise FileNotFoundError(f"{required} not found.")
    code = sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.suffix in _CODE_SUFFIXES)
    if code:
        raise ValueError(f"the bundle holds Python code {code}; a K-CROSS bundle has none (refused, not imported).")
    passed = ["no Python code in the bundle folder"]
    metadata = _read_json(metadata_file, bundle)
    try:
        validate(metadata, json.loads(schema.read_text()))
    except ValidationError as error:
        raise ValueError(f"metadata does not follow the schema: {error.message}") from error
    passed.append(f"metadata.json follows {schema.name}")
    passed += _check_configs(bundle, reference)
    passed += _check_network(bundle, metadata)
    passed.append(_check_large_files(bundle))
    if trust:
        from monai.bundle import verify_net_in_out

        try:
            with warnings.catch_warnings():  # MONAI checks shapes on network_def as built, without its weights
                warnings.filterwarnings("ignore", message="K-CROSS weights are not loaded")
                verify_net_in_out(
                    net_id="network_def",
                    meta_file=str(metadata_file),
                    config_file=str(bundle / "configs" / "inference.json"),
                    bundle_root=str(bundle),
                    device="cpu",
                    n=2,
                )
        except Exception as error:
            raise ValueError(f"MONAI's verify_net_in_out failed: {str(error).splitlines()[0]}") from error
        passed.append(
            "--trust: MONAI's verify_net_in_out of configs/inference.json's network_def passed (shapes, dtypes)"
        )
    max_mb = MAX_BUNDLE_MB if max_mb is None else max_mb
    size = sum(f.stat().st_size for f in bundle.rglob("*") if f.is_file()) / 2**20
    if size > max_mb:
        raise ValueError(f"bundle {bundle} is {size:.1f} MB, above the {max_mb:.0f} MB limit.")
    passed.append(f"size {size:.1f} MB <= {max_mb:.0f} MB")
    return passed
