"""BRISQUE and NIQE, two classic no-reference ("blind") image-quality scores, on 2-D images and volumes.

Both describe an image by the statistics of its *mean-subtracted contrast-normalised* (MSCN) coefficients
``(I - mu) / (sigma + 1)`` (``mu``, ``sigma``: local mean and deviation under a 7x7 Gaussian window with
``sigma = 7/6``, intensities on the 0-255 grey-level scale of the originals), at the full and at half
resolution (MATLAB ``imresize(I, 0.5)``: bicubic, antialiased, symmetric borders):

* a generalised Gaussian (GGD) fit of the coefficients and asymmetric generalised Gaussian (AGGD) fits of the
  products of horizontally, vertically and diagonally neighbouring coefficients, each by moment matching
  against the authors' shape grid ``0.2:0.001:10`` (here a nearest-neighbour search on the monotone moment
  ratio, equivalent to the originals' exhaustive ``min``);
* **BRISQUE** (Mittal, Moorthy & Bovik, IEEE TIP 2012) computes 18 features per scale on the whole image
  (zero-padded filtering, circular shifts, exactly the authors' ``brisque_feature.m``) and maps the 36
  features to a score with an RBF regressor ``sum_i c_i exp(-gamma ||s(f) - v_i||^2) - rho`` on features
  scaled to ``[-1, 1]`` (libsvm's ``svm-scale``);
* **NIQE** (Mittal, Soundararajan & Bovik, IEEE SPL 2013) computes 18 AGGD features per scale on every
  ``P x P`` patch (replicate-padded filtering, shifts inside the patch, the authors' ``computefeature.m``),
  fits a multivariate Gaussian to the patches of the test image and reports its distance to a *pristine*
  model, ``sqrt((mu_p - mu_t)^T pinv((S_p + S_t) / 2) (mu_p - mu_t))``. The pristine model is fitted with
  :func:`fit_niqe_model` on the sharpest patches (local deviation above ``0.75`` of the image's maximum) of
  pristine images.

Both scores are *lower is better*. They are only meaningful against models fitted on the same kind of image,
so the model is an explicit argument (see ``nr_models/README.md`` for the recipes of the shipped ones):

* ``"mri"`` (default): fitted by ``scripts/fit_no_reference_models.py`` on healthy low-noise brain slices of
  the package's MR simulator (:func:`monai_kcross.data.synthesize_brain`; T1w, T2w, PDw, FLAIR). NIQE uses
  32x32 patches so that 112x128 slices hold 12 of them. BRISQUE's regressor predicts ``100 (1 - SSIM)``
  of blurred, noisy, ringing and ghosted versions of those slices.
* ``"natural"``: the same recipes on the photographs bundled with scikit-image (96x96 NIQE patches as in the
  paper; BRISQUE trained on blur, white noise and JPEG).
* a ``dict`` or a file path: e.g. the authors' own parameters, read by :func:`load_niqe_model` (NIQE's
  ``modelparameters.mat``) or :func:`load_brisque_model` (the LIVE ``allmodel``/``allrange`` libsvm files or
  piq's ``brisque_svm_weights.pt``). The shipped BRISQUE models are *not* the LIVE model: LIVE's DMOS are not
  available offline, the shipped regressors predict an SSIM-based degradation on a 0-100 scale instead.

Intensities follow the package's policy (:mod:`monai_kcross.functional.intensity`): ``data_range="image"``
(default) maps each image's own min-max onto the 0-255 scale (for volumes: the whole volume's, before slicing),
a number ``L`` or a window ``(low, high)`` fixes it. Volumes are scored slice-wise along ``slice_axis`` with
the package's slice mechanism (:mod:`monai_kcross.functional.planar`), averaging over the slices that are not
constant (empty background slices are skipped). Images whose statistics are undefined (e.g. one with no
negative neighbour products, or no NIQE patch with defined features) score NaN, and so does a volume with such a
slice. Scores are differentiable in the image (the fitted shapes are piecewise constant and pass no gradient);
undefined statistics are masked out of the graph, so gradients stay finite on zero-background MR images.
``data_range="reference"`` is accepted as an alias of ``"image"``.

Deviations from the authors' MATLAB code, all outside the cases the golden tests cover: NIQE drops patches
whose features are undefined (constant patches) from both the mean and the covariance of the test image
(MATLAB's ``nanmean`` keeps their arbitrary shape value 0.2); with a single usable patch the test covariance is
taken as zero (MATLAB's ``nancov`` returns a scalar for one row); the half-resolution image has
``ceil(n / 2)`` pixels as in MATLAB (piq uses ``floor``).

The implementation lives in one module per concept: :mod:`~monai_kcross.functional.natural_scene` (the
statistics both scores share), :mod:`~monai_kcross.functional.brisque`, :mod:`~monai_kcross.functional.niqe` and
:mod:`~monai_kcross.functional.nr_model_files` (model validation, shipped models, file formats); this module
gathers their public functions.
"""

from __future__ import annotations

from .brisque import brisque, brisque_features, fit_brisque_model
from .natural_scene import aggd_parameters, ggd_parameters, imresize_half, mscn_coefficients
from .niqe import fit_niqe_model, niqe, niqe_distance, niqe_patch_features
from .nr_model_files import (
    BRISQUE_MODELS,
    NIQE_MODELS,
    NR_MODEL_DIR,
    get_brisque_model,
    get_niqe_model,
    load_brisque_model,
    load_niqe_model,
    save_brisque_model,
    save_niqe_model,
)

__all__ = [
    "BRISQUE_MODELS",
    "NIQE_MODELS",
    "NR_MODEL_DIR",
    "aggd_parameters",
    "brisque",
    "brisque_features",
    "fit_brisque_model",
    "fit_niqe_model",
    "get_brisque_model",
    "get_niqe_model",
    "ggd_parameters",
    "imresize_half",
    "load_brisque_model",
    "load_niqe_model",
    "mscn_coefficients",
    "niqe",
    "niqe_distance",
    "niqe_patch_features",
    "save_brisque_model",
    "save_niqe_model",
]
