"""The network of the K-CROSS bundle, in the form MONAI's bundle tools expect.

:class:`KCrossBundleNetwork` is the ``network_def`` of ``configs/{inference,evaluate,train}.json``:

* it is built from a configuration (the metadata's ``network_config``, i.e. the ``"config"`` of
  ``models/model.pt``), never from the configs themselves, so a new K-CROSS architecture needs no config change;
* it is built **empty**: every parameter is NaN until weights are loaded, so no score can come from weights that
  were never loaded (the output is NaN and a warning says how to load them);
* its ``state_dict`` keys are those of :class:`~monai_kcross.networks.KCross`, so the ``"state_dict"`` of a
  K-CROSS checkpoint (``{"config", "state_dict"}``) loads into it with ``CheckpointLoader(load_dict={"state_dict":
  network})``, ``monai.bundle.load(..., key_in_ckpt="state_dict")`` or ``ckpt_export ... --key_in_ckpt
  state_dict``;
* in a ``SupervisedTrainer`` (training mode, gradients on) it scores 2-D slices with the descriptors computed
  without gradients and differentiable score heads: fine-tuning refits the heads only;
* ``torch.jit.script`` of it (what ``ckpt_export`` does) gives :class:`KCrossSlices`, the network part in
  TorchScript: unit-range 2-D slices with a lesion-mask channel in, the score out. It holds the K-CROSS 1.0
  network with its histogram harmonisation and the segmenter's weights (the tumour branch compares tissue and
  lesion probability maps); the lesion mask is an input. The front end -- intensity mapping, cutting volumes into
  slices, predicting lesion masks when none is given -- stays in Python.
"""

from __future__ import annotations

import copy
import itertools
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..functional.intensity import to_unit_range
from ..functional.validation import as_plain_tensor
from ..metrics.kcross import KCrossScorer
from ..networks.kcross import BRANCHES, KCross, KCrossConfig
from ..networks.segmenter import load_segmenter, segment_probabilities

__all__ = ["KCrossBundleNetwork", "KCrossSlices", "empty_kcross"]

_PREFIX = "network."
# a traced graph runs on slices of any size; these are only the example inputs it is traced with
_TRACE_SHAPE = (1, 1, 64, 64)


def empty_kcross(config: Mapping[str, Any] | KCrossConfig) -> KCross:
    """A K-CROSS of the given configuration whose parameters and buffers are all NaN (weights not loaded yet)."""
    config = config if isinstance(config, KCrossConfig) else KCrossConfig.from_dict(dict(config))
    network = KCross(config)
    with torch.no_grad():
        for tensor in itertools.chain(network.parameters(), network.buffers()):
            if tensor.is_floating_point() or tensor.is_complex():
                tensor.fill_(float("nan"))
    return network


def _strip_prefix(module: nn.Module, state_dict: dict, prefix: str, local_metadata: Any) -> None:
    for key in [k for k in state_dict if k.startswith(prefix + _PREFIX)]:
        state_dict[prefix + key[len(prefix) + len(_PREFIX) :]] = state_dict.pop(key)


def _add_prefix(module: nn.Module, state_dict: dict, prefix: str, *args: Any) -> None:
    for key in [k for k in state_dict if k.startswith(prefix) and not k.startswith(prefix + _PREFIX)]:
        state_dict[prefix + _PREFIX + key[len(prefix) :]] = state_dict.pop(key)


class _CheckpointConfig:
    """The ``"config"`` entry of a K-CROSS checkpoint, as an object with ``state_dict`` for ``CheckpointSaver``."""

    def __init__(self, network: KCross) -> None:
        self.network = network

    def state_dict(self) -> dict[str, Any]:
        return self.network.config.to_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if KCrossConfig.from_dict(dict(state)) != self.network.config:
            raise ValueError(
                f"checkpoint configuration {dict(state)} differs from the network's {self.network.config.to_dict()}."
            )


class KCrossBundleNetwork(KCrossScorer):
    """K-CROSS as a bundle's ``network_def`` (see the module docstring).

    Input ``(B, 3 | 4, H, W[, D])``: channels synthesized, reference, source[, lesion mask] in any intensity
    scale; output the score ``(B, 1)`` in ``[0, 1]`` (higher is better), as :class:`KCrossScorer`.

    Args:
        config: the K-CROSS configuration (``KCrossConfig.to_dict()``; in the configs ``@_meta_#network_config``).
        options: :func:`~monai_kcross.metrics.kcross` options (``branches``, ``data_range``, ...).
    """

    def __init__(self, config: Mapping[str, Any] | KCrossConfig, **options: Any) -> None:
        super().__init__(empty_kcross(config), **options)
        self._register_state_dict_hook(_strip_prefix)
        self._register_load_state_dict_pre_hook(_add_prefix, with_module=True)
        self.checkpoint_config = _CheckpointConfig(self.network)

    @property
    def branches(self) -> tuple[str, ...]:
        return tuple(self.options.get("branches", BRANCHES))

    def score_parameters(self) -> list[nn.Parameter]:
        """The parameters fine-tuning trains: the score heads (``KCross.score_parameters``)."""
        return self.network.score_parameters()

    def weights_loaded(self) -> bool:
        """Whether every parameter is finite (an empty network is NaN until its weights are loaded)."""
        return bool(torch.stack([p.detach().isfinite().all() for p in self.network.parameters()]).all())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.weights_loaded():
            warnings.warn(
                "K-CROSS weights are not loaded: the scores are NaN. Load the 'state_dict' of models/model.pt "
                "(CheckpointLoader(load_dict={'state_dict': network}), monai.bundle.load(..., "
                "key_in_ckpt='state_dict')).",
                stacklevel=2,
            )
        if self.training and torch.is_grad_enabled():
            return self._differentiable(x)
        return super().forward(x)

    def _differentiable(self, x: torch.Tensor) -> torch.Tensor:
        """Scores of 2-D slices with gradients through the score heads only (the encoders are frozen)."""
        if x.ndim != 4 or x.shape[1] not in (3, 4):
            raise ValueError(
                "fine-tuning K-CROSS takes 2-D slices (B, 3|4, H, W) -- synthesized, reference, source[, lesion] -- "
                f"got shape {tuple(x.shape)}; cut volumes into slices first."
            )
        x = as_plain_tensor(x)  # batches of MetaTensors do not slice into single items
        data_range = self.options.get("data_range", "reference")
        synthesized, reference = to_unit_range(x[:, 0:1], x[:, 1:2], data_range, "kcross", torch.float32)
        source = to_unit_range(x[:, 2:3], x[:, 2:3], "reference", "kcross (source)", torch.float32)[1]
        lesion = (x[:, 3:4] > 0).float() if x.shape[1] == 4 else None
        with torch.no_grad():
            descriptors = self.network.descriptors(synthesized, reference, source, lesion, self.branches)
        return self.network.heads(descriptors, self.branches)["score"][:, None]

    def __prepare_scriptable__(self) -> KCrossSlices:
        """What ``torch.jit.script`` compiles: the network part (:class:`KCrossSlices`), not the Python front end."""
        return KCrossSlices.from_network(self.network, self.branches)


class _SliceGraph(nn.Module):
    """One K-CROSS forward pass on one unit-range slice ``(1, 4, H, W)``, the form that is traced.

    The lesion segmenter (whose probability maps the tumour branch compares) is a submodule, so that its weights
    are parameters of the traced graph; the network itself is not changed (a shallow copy gets the segmenter).
    """

    def __init__(self, network: KCross, branches: Sequence[str], segmenter: nn.Module) -> None:
        super().__init__()
        self.segmenter = segmenter.eval()
        self.network = copy.copy(network)
        self.network._segmenter = lambda image, foreground: segment_probabilities(image, foreground, self.segmenter)
        self.branches = tuple(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lesion = x[:, 3:4]
        descriptors = self.network.descriptors(x[:, 0:1], x[:, 1:2], x[:, 2:3], lesion, self.branches)
        return self.network.heads(descriptors, self.branches)["score"][:, None]


class KCrossSlices(nn.Module):
    """The K-CROSS network part in TorchScript: unit-range 2-D slices in, scores out.

    Input ``(B, 4, H, W)``: synthesized and reference slices mapped onto ``[0, 1]`` by the reference's range,
    the source slice by its own range, and the lesion mask (``> 0``); output ``(B, 1)``, as
    :func:`~monai_kcross.metrics.kcross` gives for these slices with ``mask`` given. K-CROSS's only data-dependent
    step -- whether a slice holds a lesion of at least ``min_lesion`` voxels -- is a choice here between two
    traced single-slice graphs, so slices of any size and any batch give the eager network's scores.

    Args:
        with_lesion: the network traced on a slice with a lesion.
        without_lesion: the network traced on a slice without one.
        min_lesion: the smallest lesion (voxels) the network scores (``KCrossConfig.min_lesion``).
    """

    def __init__(self, with_lesion: nn.Module, without_lesion: nn.Module, min_lesion: int) -> None:
        super().__init__()
        self.with_lesion, self.without_lesion, self.min_lesion = with_lesion, without_lesion, int(min_lesion)

    @classmethod
    def from_network(
        cls, network: KCross, branches: Sequence[str] = BRANCHES, segmenter: str | Path | None = None
    ) -> KCrossSlices:
        """Trace ``network`` (weights loaded) and ``segmenter`` (a checkpoint; default: the package's) on one
        slice with and one without a lesion."""
        graph = _SliceGraph(network, branches, load_segmenter(segmenter)).eval()
        device = next(network.parameters()).device
        image = torch.rand(_TRACE_SHAPE, generator=torch.Generator().manual_seed(0)).to(device)
        traced = []
        for lesion in (torch.ones_like(image), torch.zeros_like(image)):
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                traced.append(torch.jit.trace(graph, torch.cat([image, image, image, lesion], 1), check_trace=False))
        return cls(traced[0], traced[1], network.config.min_lesion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.size(1) != 4:
            raise ValueError(
                "KCrossSlices expects unit-range slices (B, 4, H, W): synthesized, reference, source, lesion"
            )
        x = torch.cat([x[:, :3], (x[:, 3:4] > 0).to(x.dtype)], 1)
        scores: list[torch.Tensor] = []
        for index in range(x.size(0)):
            item = x[index : index + 1]
            if float(item[:, 3].sum()) >= self.min_lesion:
                scores.append(self.with_lesion(item))
            else:
                scores.append(self.without_lesion(item))
        return torch.cat(scores, 0)
