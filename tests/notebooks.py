"""Run a notebook from notebooks/ on a data folder, as the notebook tests do."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
MAX_BYTES = 1_500_000  # a committed notebook keeps its outputs for the reader, at a size a review can open


def _images(nb: nbformat.NotebookNode) -> int:
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    return sum("image/png" in o.get("data", {}) for o in outputs)


def run_notebook(name: str, data: Path, as_of: str, workdir: Path, monkeypatch) -> tuple[str, int]:
    """Execute ``notebooks/NAME`` afresh (its saved outputs dropped) with ``LIKVID_DATA``/``LIKVID_AS_OF`` set,
    in ``workdir``; return the text of its outputs and the number of images it showed. The committed notebook
    must be valid and keep its executed outputs, plots included, for a reader who does not run it."""
    monkeypatch.setenv("LIKVID_DATA", str(data))
    monkeypatch.setenv("LIKVID_AS_OF", as_of)
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")  # figures become outputs
    path = NOTEBOOKS / name
    assert path.stat().st_size < MAX_BYTES, f"{name} is {path.stat().st_size:,} bytes; lower its figures' dpi"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert _images(nb), f"{name} is committed without its executed outputs"
    code = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code:
        cell.outputs, cell.execution_count = [], None
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    outputs = [o for c in code for o in c.get("outputs", [])]
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    return text, _images(nb)
