"""Networks of the package: the K-CROSS model (complex k-space U-Net, structure and tumour encoders, score
heads), its complex-valued layers, and the tissue-and-lesion segmenter."""

from .checkpoints import KCROSS_BUNDLE, load_kcross
from .kcross import BRANCHES, KCross, KCrossConfig
from .segmenter import CLASSES, build_segmenter, load_segmenter, rank_normalize, segment, segment_probabilities

__all__ = [
    "BRANCHES",
    "CLASSES",
    "KCROSS_BUNDLE",
    "KCross",
    "KCrossConfig",
    "build_segmenter",
    "load_kcross",
    "load_segmenter",
    "rank_normalize",
    "segment",
    "segment_probabilities",
]
