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


def test_no_module_import_cycle() -> None:
    """No module imports one that (directly or not) imports it back, lazy imports included."""
    import grimp

    graph = grimp.build_graph("hwsim_cli", "sim", "rtl", "hwsim", "models", "cost_models", "contract")
    cycles = sorted({tuple(sorted((a, b))) for a in graph.modules
                     for b in graph.find_modules_directly_imported_by(a)
                     if graph.find_shortest_chain(importer=b, imported=a)})
    assert cycles == [], cycles
