"""The import graph keeps its layers: hwsim_cli > sim > rtl > hwsim > models | cost_models >
contract (pyproject.toml's [tool.importlinter]); a lower package importing a higher one fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_layers_are_kept() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 kept, 0 broken" in done.stdout


def test_contract_imports_nothing_of_the_project() -> None:
    """contract is the leaf: pure Python, no third-party or project import."""
    source = (ROOT / "contract" / "__init__.py").read_text()
    imports = [line.split()[1] for line in source.splitlines()
               if line.startswith(("import ", "from "))]
    assert imports == ["__future__"]
