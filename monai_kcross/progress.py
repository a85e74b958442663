"""The progress bar the package uses: ``tqdm.auto`` where it can draw a widget, the text bar everywhere else.

``tqdm.auto`` inside a Jupyter kernel without ``ipywidgets`` warns "IProgress not found" as soon as it is imported
and then falls back to the text bar anyway; importing it only when ``ipywidgets`` is installed gives the same bars
without the warning.
"""

from __future__ import annotations

import importlib.util

__all__ = ["tqdm"]

if importlib.util.find_spec("ipywidgets") is not None:
    from tqdm.auto import tqdm
else:
    from tqdm.std import tqdm
