"""No-reference MR artefact scores: blur, ghosting, edge strength and total variation, in 2-D and 3-D.

The scores peers use to rate synthesized and motion-corrupted MR images without a reference, each following
the reference implementation named below (so that numbers can be compared with published ones):

================================ ============ ========== ===================================================
function                         direction    3-D        definition and reference implementation
================================ ============ ========== ===================================================
:func:`cpbd`                     higher is    slice-wise cumulative probability of blur detection, Narvekar
                                 sharper      (pooled)   & Karam, IEEE TIP 2011 (the authors' code as ported
                                                         in the ``cpbd`` package)
:func:`blur_effect`              lower is     native     Crété-Roffet et al., SPIE 2007, as
                                 sharper                 ``skimage.measure.blur_effect`` (nD)
:func:`laplacian_variance`       higher is    native     variance of the Laplacian, Pech-Pacheco et al.,
                                 sharper                 ICPR 2000, as ``np.var(skimage.filters.laplace(x))``
:func:`mean_line_correlation`    see below    slice-wise MLC / MSLC, Schuppert et al., Invest. Radiol. 2022,
                                              (pooled)   as Bayer's ``medimetrics``
:func:`average_edge_strength`    higher is    slice-wise AES, Pannetier et al. (Zaitsev), as in Marchetto
                                 sharper      (mean)     et al., MAGMA 2025 (``ImageQualityMetricsMRI``)
:func:`total_variation`          lower is     native     mean total variation, Rudin, Osher & Fatemi 1992,
                                 smoother                as ``medimetrics``' ``MeanTotalVar`` (``"l2"``) or
                                                         torchmetrics' anisotropic TV per voxel (``"l1"``)
================================ ============ ========== ===================================================

Every function takes ``y_pred`` ``(B, C, H, W[, D])`` and returns ``(B, C)`` scores, and shares:

* the intensity policy (:mod:`monai_kcross.functional.intensity`): ``data_range="image"`` (default) maps each
  image's (each volume's) own min-max onto ``[0, 1]``, a number ``L`` divides by ``L``, ``(low, high)`` maps
  that window onto ``[0, 1]``; CPBD then works on the 0-255 grey levels of its original. Blur effect and the
  line correlations are invariant to the intensity scale; the others are not, so compare numbers computed with
  the same policy;
* ``mask=``: weights ``(B|1, C|1, *spatial)`` or ``spatial`` in ``[0, 1]`` restricting which voxels (or edge
  pixels, lines, line pairs) are pooled; filters and edge detection still see the whole image, as in the
  masked variants of the reference code. ``empty_mask="raise"`` (default) rejects an empty mask,
  ``"nan"`` scores it NaN;
* 3-D: "native" scores use every axis of the volume; "slice-wise" ones cut the volume along ``slice_axis``
  (default the last) and pool the slices: CPBD pools the edges of all slices into one histogram, the line
  correlations pool all lines, AES averages the slices that have edges.

Scores that have nothing to measure are NaN (CPBD or AES without edges, a line correlation without lines).
CPBD, AES and the edge decisions inside them are not differentiable; the others are.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from .edges import canny, derivative
from .filtering import correlate_axis
from .intensity import DataRange, intensity_window
from .masking import prepare_mask, weighted_mean
from .planar import to_slices
from .validation import check_image_pair, compute_dtype

__all__ = [
    "average_edge_strength",
    "blur_effect",
    "cpbd",
    "laplacian_variance",
    "mean_line_correlation",
    "total_variation",
]

# core(x (N, C, H, W) unit range, weights (N, 1|C, H, W) | None) -> (numerator, denominator), each (N, C)
PooledCore = Callable[[torch.Tensor, torch.Tensor | None], tuple[torch.Tensor, torch.Tensor]]


# --------------------------------------------------------------------------------------------------------------
# shared input handling
# --------------------------------------------------------------------------------------------------------------


def _prepare(
    y_pred: torch.Tensor,
    spatial_dims: int | None,
    data_range: DataRange,
    mask: torch.Tensor | None,
    empty_mask: str,
    name: str,
) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """Validate; return the image mapped by the intensity policy (compute dtype), the mask weights, 2 or 3."""
    x, _, spatial_dims = check_image_pair(y_pred, y_pred, spatial_dims, name)
    dtype = compute_dtype(x)
    if isinstance(data_range, str):
        if data_range not in ("image", "reference"):
            raise ValueError(
                f"{name}: data_range must be 'image' (the image's own min-max), a number > 0 or a (low, high) "
                f"pair, got {data_range!r}."
            )
        flat = x.detach().reshape(*x.shape[:2], -1)
        constant = ~(flat.amax(-1) > flat.amin(-1))
        if bool(constant.any()):
            raise ValueError(
                f"{name}: data_range='image' needs a non-constant image, but it is constant for (batch, channel) "
                f"{constant.nonzero().tolist()}; pass a numeric data_range or (low, high) instead."
            )
        data_range = "reference"  # the policy's keyword for "the range of the image the window is taken from"
    low, span = intensity_window(x, data_range, name, dtype)
    weights = prepare_mask(mask, x, name, empty_mask, dtype)
    return (x.to(dtype) - low) / span, weights, spatial_dims


def _check_slices(shape: Sequence[int], spatial_dims: int, slice_axis: int, min_size: int, name: str) -> None:
    if spatial_dims == 3 and (isinstance(slice_axis, bool) or not isinstance(slice_axis, int)):
        raise ValueError(f"{name}: slice_axis must be one spatial axis (0, 1, 2 or -1, -2, -3), got {slice_axis!r}.")
    if spatial_dims == 3 and not -3 <= slice_axis <= 2:
        raise ValueError(f"{name}: slice_axis must index spatial axes (0, 1, 2 or -1, -2, -3), got {slice_axis}.")
    planes = tuple(s for i, s in enumerate(shape) if spatial_dims == 2 or i != slice_axis % 3)
    if min(planes) < min_size:
        kind = "images" if spatial_dims == 2 else "slices"
        raise ValueError(f"{name}: {kind} of size {planes} are too small; each side needs at least {min_size} pixels.")


def _pooled(
    core: PooledCore, x: torch.Tensor, weights: torch.Tensor | None, spatial_dims: int, slice_axis: int
) -> torch.Tensor:
    """Run a 2-D ``core`` on images or on the slices of volumes, pool numerators and denominators per image."""
    if spatial_dims == 2:
        numerator, denominator = core(x, weights)
    else:
        batch, channels = x.shape[:2]
        w_s = None
        if weights is not None:
            w_s = to_slices(weights.expand(batch, weights.shape[1], *weights.shape[2:]), slice_axis)
        numerator, denominator = core(to_slices(x, slice_axis), w_s)
        numerator = numerator.view(batch, -1, channels).sum(1)
        denominator = denominator.view(batch, -1, channels).sum(1)
    return torch.where(denominator > 0, numerator / _positive(denominator), math.nan)


def _positive(x: torch.Tensor) -> torch.Tensor:
    """``x`` clamped to the smallest normal number of its dtype (a safe divisor where ``x > 0`` is selected)."""
    return x.clamp_min(torch.finfo(x.dtype).tiny)


def _spatial_axes(x: torch.Tensor) -> tuple[int, ...]:
    return tuple(range(2, x.ndim))


# --------------------------------------------------------------------------------------------------------------
# blur
# --------------------------------------------------------------------------------------------------------------

_CPBD_BLOCK, _CPBD_EDGE_FRACTION, _CPBD_BETA, _CPBD_JNB_PROBABILITY = 64, 0.002, 3.6, 63
_MAX_MARGIN = 100  # the reference traces an edge at most 101 pixels to each side


def cpbd(
    y_pred: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange = "image",
    mask: torch.Tensor | None = None,
    *,
    slice_axis: int = -1,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Cumulative probability of blur detection (CPBD; Narvekar & Karam, IEEE TIP 2011); higher is sharper.

    On the 0-255 grey levels: Canny edges (``sigma=1``, thresholds 0.1/0.2) mark the 64x64 blocks holding more
    than 0.2 % edge pixels; thinned vertical Sobel edges (above twice the RMS response) get the Marziliano
    width, the number of pixels over which the row profile keeps rising (or falling) on both sides (at most
    101 per side); each width ``w`` in an edge block of contrast ``c`` gives the probability of detecting blur
    ``1 - exp(-(w / w_JNB)^3.6)`` with ``w_JNB = 5`` for ``c <= 50``, else 3; CPBD is the fraction of edges
    whose probability, rounded to a percent, is at most 63 %. As the authors' code ported in the ``cpbd``
    package, except that an image whose gradients are all horizontal is not given 0 (the port skips width
    measurement when every gradient angle is 0) and that an image without edges scores NaN (the port: 0).

    Args:
        y_pred: images ``(B, C, H, W)`` or volumes ``(B, C, H, W, D)``; slices need at least 64 pixels per side.
        spatial_dims: 2 or 3; inferred when ``None``. Volumes are scored slice-wise, the edges of all slices
            pooled into one histogram.
        data_range: intensity policy (``"image"``, ``L`` or ``(low, high)``), mapped onto 0-255.
        mask: only edge pixels inside the mask count (blocks are still classified on the whole image).
        slice_axis: spatial axis cut into slices for volumes.
        empty_mask: ``"raise"`` or ``"nan"`` for an image whose mask is empty.

    Returns:
        ``(B, C)`` scores in ``[0, 1]``.
    """
    name = "cpbd"
    x, weights, spatial_dims = _prepare(y_pred, spatial_dims, data_range, mask, empty_mask, name)
    _check_slices(x.shape[2:], spatial_dims, slice_axis, _CPBD_BLOCK, name)
    with torch.no_grad():
        return _pooled(_cpbd_counts, x.detach() * 255.0, weights, spatial_dims, slice_axis)


def _cpbd_counts(x: torch.Tensor, weights: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sharp (probability <= 63 %) and all edge counts of each image ``(N, C, H, W)`` on the 0-255 scale."""
    n, c, h, w = x.shape
    images = x.reshape(n * c, h, w)
    widths = _marziliano_widths(images, _thin_vertical_sobel_edges(images))
    # edge blocks and their just-noticeable widths
    rows, cols = h // _CPBD_BLOCK, w // _CPBD_BLOCK
    crop = (slice(None), slice(0, rows * _CPBD_BLOCK), slice(0, cols * _CPBD_BLOCK))

    def blocks(t: torch.Tensor) -> torch.Tensor:  # (N, rows * B, cols * B) -> (N, rows, cols, B * B)
        t = t[crop].reshape(-1, rows, _CPBD_BLOCK, cols, _CPBD_BLOCK).transpose(2, 3)
        return t.reshape(*t.shape[:3], -1)

    edge_block = blocks(canny(images, 1.0, 0.1, 0.2)).sum(-1) > _CPBD_BLOCK * _CPBD_BLOCK * _CPBD_EDGE_FRACTION
    pixels = blocks(images)
    contrast = torch.trunc(pixels.amax(-1) - pixels.amin(-1))
    jnb = torch.where(contrast <= 50, 5.0, 3.0).to(x.dtype)
    block_widths = blocks(widths)
    counted = (block_widths > 0) & edge_block.unsqueeze(-1)
    probability = 1 - torch.exp(-((block_widths / jnb.unsqueeze(-1)).abs() ** _CPBD_BETA))
    sharp = torch.round(probability * 100) <= _CPBD_JNB_PROBABILITY
    weight = counted.to(x.dtype)
    if weights is not None:
        weight = weight * blocks(weights.expand(n, c, h, w).reshape(n * c, h, w))
    numerator = (weight * sharp).sum(dim=(1, 2, 3)).view(n, c)
    return numerator, weight.sum(dim=(1, 2, 3)).view(n, c)


def _thin_vertical_sobel_edges(images: torch.Tensor) -> torch.Tensor:
    """Octave's ``edge(I, 'sobel')`` for vertical edges: squared response above ``2 * RMS``, thinned."""
    response = derivative(images, -1, (-2, -1)) / 8  # the Sobel kernel normalised to sum |h| = 1
    strength = response * response
    threshold = 2 * strength.mean(dim=(-2, -1), keepdim=True).sqrt()
    strength = torch.where(strength <= threshold, 0.0, strength)
    padded = torch.nn.functional.pad(strength, (1, 1, 1, 1))
    centre = padded[:, 1:-1, 1:-1]
    across = (centre > padded[:, 1:-1, :-2]) & (centre > padded[:, 1:-1, 2:])
    along = (centre > padded[:, :-2, 1:-1]) & (centre > padded[:, 2:, 1:-1])
    return across | along


def _run_lengths(steps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For a bool tensor along the last axis: the length of the run of True starting at each index going
    forward, and the one ending at each index going backward (0 where the entry is False)."""
    n = steps.shape[-1]
    index = torch.arange(n, device=steps.device).expand_as(steps)
    # the next False at or after j (n if none), the last False at or before j (-1 if none)
    next_false = torch.where(steps, n, index).flip(-1).cummin(-1).values.flip(-1)
    last_false = torch.where(steps, -1, index).cummax(-1).values
    return next_false - index, index - last_false


def _marziliano_widths(images: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Widths of vertical edges along rows (0 elsewhere), as the CPBD reference code measures them."""
    gy, gx = torch.gradient(images, dim=(-2, -1))
    angle = torch.where(gx != 0, torch.rad2deg(torch.atan2(gy, gx)), 0.0)
    angle = torch.where((gx == 0) & (gy == math.pi / 2), 90.0, angle)
    quantised = 45 * torch.round(angle / 45)
    step = torch.sign(images[..., 1:] - images[..., :-1])  # step j joins pixels j and j + 1
    zero = torch.zeros_like(step[..., :1], dtype=torch.long)
    widths = torch.zeros_like(images)
    for direction, sign in ((quantised == 0, 1.0), ((quantised == 180) | (quantised == -180), -1.0)):
        forward, backward = _run_lengths(step == sign)
        # left: steps col-2, col-3, ... continue the edge; right: steps col+1, col+2, ...
        left = torch.cat([zero, zero, backward[..., :-1]], dim=-1)  # backward run at step col - 2
        right = torch.cat([forward[..., 1:], zero, zero], dim=-1)  # forward run at step col + 1
        width = 2 + left.clamp_max(_MAX_MARGIN) + right.clamp_max(_MAX_MARGIN)
        widths = torch.where(direction & edges, width.to(images.dtype), widths)
    widths[..., 0, :] = widths[..., -1, :] = 0  # the reference measures no edge on the border
    widths[..., :, 0] = widths[..., :, -1] = 0
    return widths


def blur_effect(
    y_pred: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange = "image",
    mask: torch.Tensor | None = None,
    *,
    h_size: int = 11,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Blur effect (Crété-Roffet et al., SPIE 2007); 0 for a sharp image, 1 for a maximally blurred one.

    Per axis: the image is re-blurred with an ``h_size`` box filter; ``B = |M1 - M2| / M1`` with ``M1`` the
    sum of the absolute Sobel derivative along the axis and ``M2`` the sum of the part of it that the re-blur
    removes, both over the interior ``[2, n - 1)``; the score is the maximum over the axes, as
    ``skimage.measure.blur_effect`` (symmetric borders, derivatives clamped below at machine epsilon).

    Args:
        y_pred: ``(B, C, H, W)`` or ``(B, C, H, W, D)`` (native 3-D: all three axes); at least 4 voxels per side.
        spatial_dims: 2 or 3; inferred when ``None``.
        data_range: intensity policy; the score does not depend on the intensity scale.
        mask: restricts the sums ``M1`` and ``M2`` to the mask (within the interior).
        h_size: length of the re-blurring box filter.
        empty_mask: ``"raise"`` or ``"nan"``.

    Returns:
        ``(B, C)`` scores in ``[0, 1]``, lower is sharper.
    """
    name = "blur_effect"
    if isinstance(h_size, bool) or not isinstance(h_size, int) or h_size < 1:
        raise ValueError(f"{name}: h_size must be a positive integer, got {h_size!r}.")
    x, weights, _ = _prepare(y_pred, spatial_dims, data_range, mask, empty_mask, name)
    _check_min_size(x, 4, name)
    axes = _spatial_axes(x)
    interior = torch.zeros_like(x[:1, :1])
    interior[(slice(None), slice(None), *(slice(2, n - 1) for n in x.shape[2:]))] = 1
    region = interior if weights is None else interior * weights
    epsilon = torch.finfo(torch.float64).eps
    box = (1.0 / h_size,) * (h_size if h_size % 2 else h_size + 1)
    if h_size % 2 == 0:  # scipy's uniform_filter1d centres an even window half a voxel to the left
        box = (*box[:-1], 0.0)
    scores = []
    for axis in axes:
        blurred = correlate_axis(x, axis, box)
        sharp = (derivative(x, axis, axes) / 4 ** (len(axes) - 1)).abs().clamp_min(epsilon)
        blur = (derivative(blurred, axis, axes) / 4 ** (len(axes) - 1)).abs().clamp_min(epsilon)
        m1 = (sharp * region).sum(dim=axes)
        m2 = ((sharp - blur).clamp_min(0) * region).sum(dim=axes)
        scores.append((m1 - m2).abs() / m1)
    return torch.stack(scores).amax(0)


def _check_min_size(x: torch.Tensor, min_size: int, name: str) -> None:
    if min(x.shape[2:]) < min_size:
        raise ValueError(
            f"{name}: images of size {tuple(x.shape[2:])} are too small; each side needs at least {min_size} voxels."
        )


def laplacian_variance(
    y_pred: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange = "image",
    mask: torch.Tensor | None = None,
    *,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Variance of the Laplacian (Pech-Pacheco et al., ICPR 2000); higher is sharper (and noisier).

    The discrete Laplacian ``sum_d (x[i + e_d] + x[i - e_d]) - 2 n x[i]`` (3x3 or 3x3x3 cross, symmetric
    borders, the sign of ``skimage.filters.laplace`` being irrelevant) and its population variance over all
    voxels (weighted variance inside ``mask``), as ``np.var(skimage.filters.laplace(x))`` on the mapped image.

    Args:
        y_pred: ``(B, C, H, W)`` or ``(B, C, H, W, D)`` (native 3-D); at least 2 voxels per side.
        spatial_dims, data_range, mask, empty_mask: see the module docstring. The score scales with the square
            of the intensity scale.

    Returns:
        ``(B, C)`` scores.
    """
    name = "laplacian_variance"
    x, weights, _ = _prepare(y_pred, spatial_dims, data_range, mask, empty_mask, name)
    _check_min_size(x, 2, name)
    axes = _spatial_axes(x)
    laplacian = sum(correlate_axis(x, axis, (1.0, -2.0, 1.0)) for axis in axes)
    mean = weighted_mean(laplacian, weights, empty_mask="nan")
    return weighted_mean((laplacian - mean.view(*mean.shape, *[1] * len(axes))) ** 2, weights, empty_mask="nan")


# --------------------------------------------------------------------------------------------------------------
# ghosting
# --------------------------------------------------------------------------------------------------------------


def mean_line_correlation(
    y_pred: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange = "image",
    mask: torch.Tensor | None = None,
    *,
    shift: int | str = 1,
    slice_axis: int = -1,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Mean (shifted) line correlation, MLC / MSLC (Schuppert et al., Invest. Radiol. 2022).

    The mean Pearson correlation between every row and the row ``shift`` below it, and every column and the
    column ``shift`` to its right (all correlations pooled), as Bayer's ``medimetrics``: identical lines
    correlate 1, a constant line with a different one 0. ``shift=1`` (MLC) is high for smooth images and drops
    with noise and stripes; ``shift="half"`` (MSLC: half the image size along each axis) rises with the
    ``N/2`` ghosts of motion and phase errors. (``medimetrics`` shifts columns by half the *width* too, which
    differs from ``"half"`` only for non-square images.)

    Args:
        y_pred: ``(B, C, H, W)`` or ``(B, C, H, W, D)`` (slice-wise: the lines of every slice are pooled).
        spatial_dims, data_range, empty_mask, slice_axis: see the module docstring; the correlation does not
            depend on the intensity scale.
        mask: a line pair uses the positions where both lines are inside the mask (weights multiply); pairs
            without any are left out.
        shift: a positive number of lines, or ``"half"``.

    Returns:
        ``(B, C)`` correlations in ``[-1, 1]``.
    """
    name = "mean_line_correlation"
    if shift != "half" and (isinstance(shift, bool) or not isinstance(shift, int) or shift < 1):
        raise ValueError(f"{name}: shift must be a positive integer or 'half', got {shift!r}.")
    x, weights, spatial_dims = _prepare(y_pred, spatial_dims, data_range, mask, empty_mask, name)
    _check_slices(x.shape[2:], spatial_dims, slice_axis, 2 if shift == "half" else shift + 1, name)

    def core(images: torch.Tensor, w: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        totals, counts = [], []
        for axis in (-2, -1):  # pairs of rows (shifted along H), then of columns (along W)
            d = images.shape[axis] // 2 if shift == "half" else shift
            length = images.shape[axis] - d
            a, b = images.narrow(axis, 0, length), images.narrow(axis, d, length)
            pair_w = None if w is None else (w.narrow(axis, 0, length) * w.narrow(axis, d, length)).expand_as(a)
            correlation, valid = _line_correlation(a, b, pair_w, -1 if axis == -2 else -2)
            totals.append(torch.where(valid, correlation, 0.0).sum(-1))
            counts.append(valid.sum(-1).to(images.dtype))
        return totals[0] + totals[1], counts[0] + counts[1]

    return _pooled(core, x, weights, spatial_dims, slice_axis)


def _line_correlation(
    a: torch.Tensor, b: torch.Tensor, weights: torch.Tensor | None, along: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pearson correlation of paired lines ``a``, ``b`` along ``along``: values and which lines have pairs."""
    if weights is None:
        weights = torch.ones_like(a)
    total = weights.sum(along)
    valid = total > 0
    total = _positive(total).unsqueeze(along)
    mean_a, mean_b = (weights * a).sum(along, keepdim=True) / total, (weights * b).sum(along, keepdim=True) / total
    da, db = a - mean_a, b - mean_b
    covariance = (weights * da * db).sum(along)
    var_a, var_b = (weights * da * da).sum(along), (weights * db * db).sum(along)
    correlation = (covariance / _positive(var_a * var_b).sqrt()).clamp(-1, 1)
    used = weights > 0
    identical = ((a == b) | ~used).all(along)
    constant = (var_a == 0) | (var_b == 0)
    correlation = torch.where(identical, 1.0, torch.where(constant, 0.0, correlation))
    return correlation.squeeze(along) if correlation.ndim > valid.ndim else correlation, valid


# --------------------------------------------------------------------------------------------------------------
# edge strength and total variation
# --------------------------------------------------------------------------------------------------------------


def average_edge_strength(
    y_pred: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange = "image",
    mask: torch.Tensor | None = None,
    *,
    sigma: float = math.sqrt(2),
    slice_axis: int = -1,
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Average edge strength, AES (Pannetier et al.; Marchetto et al., MAGMA 2025); higher is sharper.

    Per 2-D image: Canny edges ``E`` (``sigma``, thresholds 0.1/0.2 on the mapped image) and Prewitt
    derivatives ``g_x``, ``g_y`` (symmetric borders); ``AES = sqrt(sum_E (g_x^2 + g_y^2)) / |E|``, the edge
    pixels limited to ``mask``, as the ``aes`` function of the ``ImageQualityMetricsMRI`` code of Marchetto et
    al. (without its optional cropping and intensity binning). Volumes: the mean over the slices along
    ``slice_axis`` that have edges (as that code, which works slice by slice).

    Args:
        y_pred: ``(B, C, H, W)`` or ``(B, C, H, W, D)``; at least 3 pixels per side.
        spatial_dims, data_range, mask, empty_mask, slice_axis: see the module docstring.
        sigma: standard deviation of the Canny smoothing, pixels.

    Returns:
        ``(B, C)`` scores, NaN without edges.
    """
    name = "average_edge_strength"
    if not (isinstance(sigma, (int, float)) and not isinstance(sigma, bool) and sigma > 0):
        raise ValueError(f"{name}: sigma must be a number > 0, got {sigma!r}.")
    x, weights, spatial_dims = _prepare(y_pred, spatial_dims, data_range, mask, empty_mask, name)
    _check_slices(x.shape[2:], spatial_dims, slice_axis, 3, name)

    def core(images: torch.Tensor, w: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        edges = canny(images.detach(), float(sigma), 0.1, 0.2).to(images.dtype)
        if w is not None:
            edges = edges * w
        strength = derivative(images, -1, (-2, -1), "prewitt") ** 2 + derivative(images, -2, (-2, -1), "prewitt") ** 2
        count = edges.sum(dim=(-2, -1))
        value = torch.sqrt((edges * strength).sum(dim=(-2, -1))) / _positive(count)
        defined = count > 0
        return torch.where(defined, value, 0.0), defined.to(images.dtype)

    return _pooled(core, x, weights, spatial_dims, slice_axis)


def total_variation(
    y_pred: torch.Tensor,
    spatial_dims: int | None = None,
    data_range: DataRange = "image",
    mask: torch.Tensor | None = None,
    *,
    norm: str = "l2",
    empty_mask: str = "raise",
) -> torch.Tensor:
    """Mean total variation (Rudin, Osher & Fatemi 1992); lower is smoother (noise and ringing raise it).

    The gradient at voxel ``i`` from backward differences ``x[i] - x[i - e_d]`` along every spatial axis, at
    the voxels that have a predecessor along every axis; its Euclidean norm (``"l2"``, isotropic TV, as
    ``medimetrics``' ``MeanTotalVar``, which on images whose first and last two rows and columns are zero
    gives the same number) or the sum of its absolute values (``"l1"``, anisotropic TV, torchmetrics'
    ``total_variation`` divided by the ``(H - 1)(W - 1)`` voxels on such images), averaged over those voxels
    (weighted inside ``mask``). Native in 3-D.

    Args:
        y_pred: ``(B, C, H, W)`` or ``(B, C, H, W, D)``; at least 2 voxels per side.
        spatial_dims, data_range, mask, empty_mask: see the module docstring; the score scales with the
            intensity scale.
        norm: ``"l2"`` or ``"l1"``.

    Returns:
        ``(B, C)`` scores.
    """
    name = "total_variation"
    if norm not in ("l1", "l2"):
        raise ValueError(f"{name}: norm must be 'l1' or 'l2', got {norm!r}.")
    x, weights, _ = _prepare(y_pred, spatial_dims, data_range, mask, empty_mask, name)
    _check_min_size(x, 2, name)
    axes = _spatial_axes(x)
    inner = (slice(None), slice(None), *(slice(1, None) for _ in axes))
    differences = []
    for axis in axes:
        before = tuple(slice(None, -1) if a == axis else s for a, s in zip(range(x.ndim), inner))
        differences.append(x[inner] - x[before])
    if norm == "l1":
        per_voxel = sum(d.abs() for d in differences)
    else:
        squared = sum(d * d for d in differences)
        per_voxel = torch.where(squared > 0, squared.clamp_min(torch.finfo(x.dtype).tiny).sqrt(), 0.0)
    return weighted_mean(per_voxel, None if weights is None else weights[inner], empty_mask="nan")
