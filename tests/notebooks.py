"""Run a notebook from notebooks/ on a data folder, as the notebook tests do."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def run_notebook(name: str, data: Path, as_of: str, workdir: Path, monkeypatch) -> tuple[str, int]:
    """Execute ``notebooks/NAME`` with ``LIKVID_DATA``/``LIKVID_AS_OF`` set, in ``workdir``; return the
    text of its outputs and the number of images it showed. The committed notebook must hold no outputs."""
    monkeypatch.setenv("LIKVID_DATA", str(data))
    monkeypatch.setenv("LIKVID_AS_OF", as_of)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not any(c.get("outputs") for c in code), "commit the notebook without outputs"
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    outputs = [o for c in code for o in c.get("outputs", [])]
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    return text, sum("image/png" in o.get("data", {}) for o in outputs)
