"""The quickstart notebook runs top to bottom (outputs are stripped in the repository)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"


def test_notebook_outputs_are_stripped() -> None:
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    assert all(
        not c.get("outputs") and not c.get("execution_count") for c in cells if c["cell_type"] == "code"
    )


@pytest.mark.slow
def test_quickstart_notebook_executes(monkeypatch: pytest.MonkeyPatch) -> None:
    steps = os.environ.get("QUICKSTART_STEPS", "60")
    monkeypatch.setenv("QUICKSTART_STEPS", steps)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()
    text = "\n".join(o.get("text", "") for c in notebook.cells for o in c.get("outputs", []))
    assert f"generator steps: {steps}" in text and "FID(train, generated)" in text
