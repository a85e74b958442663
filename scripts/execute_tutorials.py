"""Execute the tutorial notebooks and store them with their outputs.

Each notebook runs with nbclient (kernel ``python3``) in a scratch folder, with the settings CI uses
(``MONAI_KCROSS_TUTORIAL_SMALL=1``, one intra-op thread, no ``MONAI_KCROSS_WEIGHTS``), and is written back to
``tutorials/`` with its outputs, execution counts and no other metadata. The wall time of each is printed::

    python scripts/execute_tutorials.py                       # every notebook
    python scripts/execute_tutorials.py tutorials/03_*.ipynb  # some of them
    python scripts/execute_tutorials.py --check               # run, report times, write nothing back

``tests/test_tutorials.py`` executes the notebooks again (on copies) and never reads the stored outputs.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import nbformat

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
CELL_TIMEOUT = 600


def tutorial_environment() -> dict[str, str]:
    """The environment CI executes the tutorials in (see ``tests/test_tutorials.py``)."""
    env = {**os.environ, "MONAI_KCROSS_TUTORIAL_SMALL": "1", "MPLBACKEND": "Agg"}
    env.pop("MONAI_KCROSS_WEIGHTS", None)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def execute(path: Path, workdir: Path, env: dict[str, str]) -> nbformat.NotebookNode:
    """Run the notebook at ``path`` with ``workdir`` as the kernel's working directory; return it executed."""
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute(env=env)
    return notebook


def clean(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Keep only the kernel spec and language info in the notebook metadata and tags in the cells'."""
    notebook.metadata = nbformat.NotebookNode(
        {key: notebook.metadata[key] for key in ("kernelspec", "language_info") if key in notebook.metadata}
    )
    for cell in notebook.cells:
        cell.metadata = nbformat.NotebookNode({key: cell.metadata[key] for key in ("tags",) if key in cell.metadata})
    return notebook


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: every tutorial)")
    parser.add_argument("--check", action="store_true", help="run them and report the times; write nothing back")
    args = parser.parse_args()
    paths = args.notebooks or sorted(TUTORIALS.glob("*.ipynb"))
    env = tutorial_environment()
    total = 0.0
    for path in paths:
        with tempfile.TemporaryDirectory(prefix="tutorial_") as scratch:
            start = time.perf_counter()
            notebook = clean(execute(path, Path(scratch), env))
            seconds = time.perf_counter() - start
        total += seconds
        if not args.check:
            nbformat.validate(notebook)
            nbformat.write(notebook, path)
        print(f"{path.name}: {seconds:.0f} s{'' if args.check else ', stored with outputs'}", flush=True)
    print(f"total: {total:.0f} s")


if __name__ == "__main__":
    main()
