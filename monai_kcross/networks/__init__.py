"""Networks of the package: the tissue-and-lesion segmenter (and, later, the K-CROSS model)."""

from .segmenter import CLASSES, build_segmenter, load_segmenter, rank_normalize, segment, train_segmenter

__all__ = ["CLASSES", "build_segmenter", "load_segmenter", "rank_normalize", "segment", "train_segmenter"]
