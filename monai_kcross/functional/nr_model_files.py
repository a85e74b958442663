"""The models of BRISQUE and NIQE: validation, the shipped ``nr_models/`` files, and readers/writers of the
authors' formats (NIQE's ``modelparameters.mat``, LIVE's libsvm ``allmodel``/``allrange``, piq's
``brisque_svm_weights.pt``) and of the package's ``.npz`` files.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .natural_scene import _check_patch_size

__all__ = [
    "BRISQUE_MODELS",
    "NIQE_MODELS",
    "NR_MODEL_DIR",
    "get_brisque_model",
    "get_niqe_model",
    "load_brisque_model",
    "load_niqe_model",
    "save_brisque_model",
    "save_niqe_model",
]

NR_MODEL_DIR = Path(__file__).resolve().parent / "nr_models"
NIQE_MODELS = {"mri": "niqe_mri.npz", "natural": "niqe_natural.npz"}
BRISQUE_MODELS = {"mri": "brisque_mri.npz", "natural": "brisque_natural.npz"}
NUM_FEATURES = 36

NIQEModel = Mapping[str, Any]
BRISQUEModel = Mapping[str, Any]


def _cpu_float64(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().to(device="cpu", dtype=torch.float64)
    return torch.as_tensor(np.asarray(value, dtype=np.float64))


def _as_float64(value: Any, shape: tuple[int, ...], what: str) -> torch.Tensor:
    tensor = _cpu_float64(value)
    if tensor.numel() == math.prod(shape):
        tensor = tensor.reshape(shape)
    if tuple(tensor.shape) != shape or not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{what} must be a finite array of shape {shape}, got shape {tuple(tensor.shape)}.")
    return tensor


def _check_niqe_model(model: Mapping[str, Any], source: str) -> dict[str, Any]:
    missing = [k for k in ("mu", "cov") if k not in model]
    if missing:
        raise ValueError(f"NIQE model {source} lacks {missing}; expected keys 'mu', 'cov' and 'patch_size'.")
    out = dict(model)
    out["mu"] = _as_float64(model["mu"], (NUM_FEATURES,), f"NIQE model {source}: mu")
    out["cov"] = _as_float64(model["cov"], (NUM_FEATURES, NUM_FEATURES), f"NIQE model {source}: cov")
    patch_size = model.get("patch_size", 96)
    patch_size = int(patch_size.item() if hasattr(patch_size, "item") else patch_size)
    _check_patch_size(patch_size, f"NIQE model {source}")
    out["patch_size"] = patch_size
    return out


def _check_brisque_model(model: Mapping[str, Any], source: str) -> dict[str, Any]:
    keys = ("support_vectors", "coefficients", "gamma", "rho", "feature_low", "feature_high")
    missing = [k for k in keys if k not in model]
    if missing:
        raise ValueError(f"BRISQUE model {source} lacks {missing}; expected keys {list(keys)}.")
    out = dict(model)
    vectors = _cpu_float64(model["support_vectors"])
    if vectors.ndim != 2 or vectors.shape[1] != NUM_FEATURES:
        raise ValueError(
            f"BRISQUE model {source}: support_vectors must be (n, {NUM_FEATURES}), got {tuple(vectors.shape)}."
        )
    out["support_vectors"] = _as_float64(vectors, tuple(vectors.shape), f"BRISQUE model {source}: support_vectors")
    out["coefficients"] = _as_float64(
        model["coefficients"], (vectors.shape[0],), f"BRISQUE model {source}: coefficients"
    )
    for key in ("feature_low", "feature_high"):
        out[key] = _as_float64(model[key], (NUM_FEATURES,), f"BRISQUE model {source}: {key}")
    out["gamma"], out["rho"] = (float(_cpu_float64(model[k]).reshape(-1)[0]) for k in ("gamma", "rho"))
    if not out["gamma"] > 0 or not math.isfinite(out["gamma"]) or not math.isfinite(out["rho"]):
        raise ValueError(f"BRISQUE model {source}: gamma must be > 0 and rho finite, got {out['gamma']}, {out['rho']}.")
    return out


@functools.lru_cache(maxsize=8)
def _shipped(kind: str, name: str) -> dict[str, Any]:
    table = NIQE_MODELS if kind == "niqe" else BRISQUE_MODELS
    path = NR_MODEL_DIR / table[name]
    return load_niqe_model(path) if kind == "niqe" else load_brisque_model(path)


def _resolve(model: Any, kind: str) -> dict[str, Any]:
    table = NIQE_MODELS if kind == "niqe" else BRISQUE_MODELS
    if isinstance(model, Mapping):
        return _check_niqe_model(model, "dict") if kind == "niqe" else _check_brisque_model(model, "dict")
    if isinstance(model, str) and model in table:
        return dict(_shipped(kind, model))  # a copy: callers may edit their dict
    if isinstance(model, (str, Path)):
        path = Path(model)
        if path.suffix or path.parent != Path(".") or path.exists():
            return load_niqe_model(path) if kind == "niqe" else load_brisque_model(path)
        raise ValueError(f"{kind}: unknown model {model!r}; use one of {sorted(table)}, a model dict or a file path.")
    raise ValueError(f"{kind}: model must be a name ({sorted(table)}), a dict or a path, got {type(model).__name__}.")


def get_niqe_model(model: str | Path | NIQEModel = "mri") -> dict[str, Any]:
    """Resolve a NIQE model argument: a shipped name (``"mri"``, ``"natural"``), a file path or a dict.

    Returns:
        The validated model dict (``mu`` ``(36,)``, ``cov`` ``(36, 36)`` float64, ``patch_size``, ...).

    Raises:
        ValueError: unknown name or invalid content; FileNotFoundError: a path that does not exist.
    """
    return _resolve(model, "niqe")


def get_brisque_model(model: str | Path | BRISQUEModel = "mri") -> dict[str, Any]:
    """Resolve a BRISQUE model argument: a shipped name (``"mri"``, ``"natural"``), a file path or a dict.

    Returns:
        The validated model dict (``support_vectors``, ``coefficients``, ``gamma``, ``rho``, feature ranges).

    Raises:
        ValueError: unknown name or invalid content; FileNotFoundError: a path that does not exist.
    """
    return _resolve(model, "brisque")


def _existing(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {str(path)!r} does not exist or is not a file.")
    return path


def _metadata(data: Mapping[str, Any], key: str, default: Any) -> Any:
    if key not in data:
        return default
    value = np.asarray(data[key])
    return value.item() if value.ndim == 0 else value


def load_niqe_model(path: str | Path, patch_size: int = 96) -> dict[str, Any]:
    """Read a NIQE pristine model.

    Args:
        path: ``.npz`` written by :func:`save_niqe_model` (the shipped models), or the authors'
            ``modelparameters.mat`` (MATLAB, variables ``mu_prisparam`` ``(1, 36)`` and ``cov_prisparam``
            ``(36, 36)``).
        patch_size: patch size of a ``.mat`` model (96 for the authors' model); ``.npz`` files store theirs.

    Returns:
        The model dict (``mu``, ``cov``, ``patch_size``, ...).

    Raises:
        FileNotFoundError: naming the file if it does not exist.
        ValueError: unreadable content or missing variables.
    """
    path = _existing(path, "NIQE model")
    if path.suffix.lower() == ".mat":
        import scipy.io

        try:
            data = scipy.io.loadmat(path)
        except Exception as error:  # scipy raises several types for non-MAT content
            raise ValueError(f"NIQE model {str(path)!r} is not a readable MATLAB file: {error}") from error
        missing = [k for k in ("mu_prisparam", "cov_prisparam") if k not in data]
        if missing:
            raise ValueError(f"NIQE model {str(path)!r} lacks the MATLAB variables {missing}.")
        model = {"mu": data["mu_prisparam"], "cov": data["cov_prisparam"], "patch_size": patch_size}
        model["description"] = f"MATLAB model {path.name}"
        return _check_niqe_model(model, repr(str(path)))
    try:
        with np.load(path, allow_pickle=False) as data:
            raw = {k: data[k] for k in data.files}
    except Exception as error:
        raise ValueError(f"NIQE model {str(path)!r} is not a readable .npz file: {error}") from error
    model = {
        "mu": raw.get("mu"),
        "cov": raw.get("cov"),
        "patch_size": _metadata(raw, "patch_size", patch_size),
        "sharpness_threshold": _metadata(raw, "sharpness_threshold", math.nan),
        "description": str(_metadata(raw, "description", path.name)),
    }
    if model["mu"] is None or model["cov"] is None:
        raise ValueError(f"NIQE model {str(path)!r} lacks the arrays 'mu' and 'cov'.")
    return _check_niqe_model(model, repr(str(path)))


def save_niqe_model(model: NIQEModel, path: str | Path) -> Path:
    """Write a NIQE model (``mu``, ``cov``, ``patch_size``, metadata) as ``.npz``; returns the path."""
    checked = _check_niqe_model(model, "to save")
    threshold = checked.get("sharpness_threshold")
    path = Path(path)
    with path.open("wb") as handle:
        np.savez(
            handle,
            mu=checked["mu"].numpy(),
            cov=checked["cov"].numpy(),
            patch_size=np.int64(checked["patch_size"]),
            sharpness_threshold=np.float64(math.nan if threshold is None else threshold),
            n_patches=np.int64(checked.get("n_patches", -1)),
            description=np.str_(checked.get("description", "")),
        )
    return path


def _read_svm_scale_ranges(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Feature minima and maxima of a libsvm ``svm-scale`` range file (``x``, ``lower upper``, ``i min max``)."""
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    if not lines or lines[0] != ["x"] or len(lines) < 2 + NUM_FEATURES:
        raise ValueError(f"BRISQUE range file {str(path)!r} is not an svm-scale range file for 36 features.")
    low, high = np.full(NUM_FEATURES, np.nan), np.full(NUM_FEATURES, np.nan)
    for fields in lines[2:]:
        index = int(fields[0]) - 1
        if len(fields) != 3 or not 0 <= index < NUM_FEATURES:
            raise ValueError(f"BRISQUE range file {str(path)!r}: unexpected line {' '.join(fields)!r}.")
        low[index], high[index] = float(fields[1]), float(fields[2])
    lower, upper = (float(v) for v in lines[1])
    if (lower, upper) != (-1.0, 1.0):
        raise ValueError(f"BRISQUE range file {str(path)!r} scales to [{lower}, {upper}]; only [-1, 1] is supported.")
    return low, high


def _read_libsvm_model(path: Path) -> dict[str, Any]:
    """Support vectors, coefficients, gamma and rho of a libsvm RBF regression model file."""
    header: dict[str, str] = {}
    coefficients, vectors = [], []
    with path.open() as handle:
        for line in handle:
            fields = line.split()
            if not fields:
                continue
            if fields[0] == "SV":
                break
            header[fields[0]] = " ".join(fields[1:])
        for line in handle:
            fields = line.split()
            if not fields:
                continue
            row = np.zeros(NUM_FEATURES)
            for item in fields[1:]:
                index, value = item.split(":")
                row[int(index) - 1] = float(value)
            coefficients.append(float(fields[0]))
            vectors.append(row)
    if header.get("kernel_type") != "rbf" or "gamma" not in header or "rho" not in header or not vectors:
        raise ValueError(
            f"BRISQUE model {str(path)!r} is not a libsvm RBF model file (needs kernel_type rbf, gamma, rho, SV)."
        )
    return {
        "support_vectors": np.stack(vectors),
        "coefficients": np.asarray(coefficients),
        "gamma": float(header["gamma"]),
        "rho": float(header["rho"].split()[0]),
    }


def load_brisque_model(
    path: str | Path, range_path: str | Path | None = None, *, gamma: float | None = None, rho: float | None = None
) -> dict[str, Any]:
    """Read a BRISQUE regression model.

    Formats:

    * ``.npz`` written by :func:`save_brisque_model` (the shipped models): everything included.
    * a libsvm model file (the LIVE release's ``allmodel``: header with ``kernel_type rbf``, ``gamma``,
      ``rho``, then ``SV`` and one ``coef index:value ...`` line per support vector), with ``range_path``, the
      release's ``svm-scale`` range file ``allrange``.
    * ``.pt``/``.pth``: piq's ``brisque_svm_weights.pt`` (a pair ``(coefficients (n,), support vectors
      (n, 36))``, or a dict with ``sv_coef`` and ``sv``), with ``range_path`` and the model's ``gamma`` and
      ``rho`` (for the LIVE model shipped by piq: 0.05 and -153.591, as its ``allmodel`` header states).

    Raises:
        FileNotFoundError: naming ``path`` or ``range_path`` if it does not exist.
        ValueError: unreadable content, or a missing ``range_path``/``gamma``/``rho``.
    """
    path = _existing(path, "BRISQUE model")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                raw = {k: data[k] for k in data.files}
        except Exception as error:
            raise ValueError(f"BRISQUE model {str(path)!r} is not a readable .npz file: {error}") from error
        raw["description"] = str(_metadata(raw, "description", path.name))
        return _check_brisque_model(raw, repr(str(path)))
    if range_path is None:
        raise ValueError(
            f"BRISQUE model {str(path)!r}: pass range_path, the svm-scale feature range file (LIVE's 'allrange')."
        )
    low, high = _read_svm_scale_ranges(_existing(range_path, "BRISQUE range"))
    if suffix in (".pt", ".pth"):
        if gamma is None or rho is None:
            raise ValueError(f"BRISQUE model {str(path)!r}: a torch weights file needs gamma= and rho= as well.")
        try:
            content = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise ValueError(f"BRISQUE model {str(path)!r} is not a readable torch file: {error}") from error
        if isinstance(content, Mapping) and {"sv_coef", "sv"} <= set(content):
            coefficients, vectors = content["sv_coef"], content["sv"]
        elif isinstance(content, (tuple, list)) and len(content) == 2:
            coefficients, vectors = content
        else:
            raise ValueError(f"BRISQUE model {str(path)!r}: expected (sv_coef, sv) or a dict with 'sv_coef', 'sv'.")
        vectors = torch.as_tensor(vectors, dtype=torch.float64)
        if vectors.ndim == 2 and vectors.shape[0] == NUM_FEATURES and vectors.shape[1] != NUM_FEATURES:
            vectors = vectors.T
        raw = {"support_vectors": vectors, "coefficients": torch.as_tensor(coefficients).flatten(), "gamma": gamma}
        raw["rho"] = rho
    else:
        try:
            raw = _read_libsvm_model(path)
        except UnicodeDecodeError as error:
            raise ValueError(f"BRISQUE model {str(path)!r} is not a libsvm text model: {error}") from error
        raw.update({k: v for k, v in (("gamma", gamma), ("rho", rho)) if v is not None})
    raw.update(feature_low=low, feature_high=high, description=f"libsvm model {path.name}")
    return _check_brisque_model(raw, repr(str(path)))


def save_brisque_model(model: BRISQUEModel, path: str | Path) -> Path:
    """Write a BRISQUE model as ``.npz`` (support vectors, coefficients, gamma, rho, feature ranges)."""
    checked = _check_brisque_model(model, "to save")
    path = Path(path)
    with path.open("wb") as handle:
        np.savez(
            handle,
            support_vectors=checked["support_vectors"].numpy(),
            coefficients=checked["coefficients"].numpy(),
            gamma=np.float64(checked["gamma"]),
            rho=np.float64(checked["rho"]),
            feature_low=checked["feature_low"].numpy(),
            feature_high=checked["feature_high"].numpy(),
            description=np.str_(checked.get("description", "")),
        )
    return path
