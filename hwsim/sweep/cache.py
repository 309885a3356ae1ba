"""The sweep's result cache on disk, so that a sweep run again costs nothing.

A point's result (its :meth:`hwsim.simulate.Report.totals`) is kept under a key made of
everything that decides it:

* the **workload fingerprint**: a hash of the whole :class:`~hwsim.workload.Workload` (every
  layer's shapes, kinds and widths);
* the **accelerator** (every field of :class:`~hwsim.accelerator.Accelerator`);
* the **contents** of its technology table and DRAM table (a user's table edited in place
  changes the key);
* the **code**: hwsim's version and a hash of the source and data files of ``contract``,
  ``cost_models``, ``models`` and ``hwsim`` (:func:`code_hash`), so a changed cost model, mapper
  or network never serves an old result.

Tracing a network takes seconds while a cached point takes microseconds, so the fingerprint of
each (network, PE kind, width) is cached too, under its recipe: the network's name (a registry
name, or the content of its ``.py``/``.csv``/``.onnx`` file), the target, the conversion choices
and the code hash. A network given as ``package.module:factory`` has no recipe and is traced
every run (its points still come from the cache).

Files live under ``ROOT/points/`` and ``ROOT/workloads/`` (``ROOT`` is ``sweep/`` under the
cache folder, by default ``cache/`` of :func:`hwsim.files.build_root`), one small JSON file
each, written atomically: concurrent sweeps may share a cache.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import hwsim
from cost_models.memory import DRAM_DIR
from cost_models.tech import DATA_DIR, read_table
from hwsim.accelerator import Accelerator
from hwsim.errors import ConfigError, HwsimError
from hwsim.files import write_atomic
from hwsim.workload import Workload

__all__ = ["CODE_PACKAGES", "PRESENTATION", "Cache", "code_hash", "point_key", "recipe_key", "workload_fingerprint"]

#: The packages whose files decide a result (the face, ``hwsim_cli``, does not) ...
CODE_PACKAGES = ("contract", "cost_models", "models", "hwsim")
#: ... but for these folders of them, which only present results (editing a plot keeps the cache).
PRESENTATION = ("hwsim/sweep", "hwsim/reports")
_CODE_SUFFIXES = (".py", ".yaml", ".json")


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@functools.cache
def code_hash() -> str:
    """Hash of hwsim's version and of every source and data file of :data:`CODE_PACKAGES` outside
    :data:`PRESENTATION`."""
    digest = hashlib.sha256(hwsim.__version__.encode())
    for package in CODE_PACKAGES:
        spec = importlib.util.find_spec(package)
        root = Path(next(iter(spec.submodule_search_locations)))
        for path in sorted(root.rglob("*")):
            name = f"{package}/{path.relative_to(root).as_posix()}"
            if (path.suffix in _CODE_SUFFIXES and "__pycache__" not in path.parts
                    and not name.startswith(tuple(f"{folder}/" for folder in PRESENTATION))):
                digest.update(f"{name}\0".encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def _table_hash(name: str, kind: str, folder: Path) -> str:
    """Hash of the content of the table ``name`` (shipped or a path); ConfigError if missing."""
    try:
        _, _, path = read_table(name, kind, folder)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def workload_fingerprint(workload: Workload) -> str:
    """Hash of every field of ``workload`` (its layers included)."""
    return _digest(dataclasses.asdict(workload))


def point_key(fingerprint: str, acc: Accelerator) -> str:
    """The cache key of ``acc`` costing the workload of ``fingerprint``."""
    return _digest({"workload": fingerprint, "accelerator": acc.to_dict(), "code": code_hash(),
                    "tech": _table_hash(acc.tech, "tech", DATA_DIR),
                    "dram": _table_hash(acc.memory.dram, "dram", DRAM_DIR)})


def _model_source(model: str) -> str | None:
    """What names network ``model`` for good: a registry name as it is, a file's content hash;
    None for ``package.module:factory`` (an import cannot be hashed without running it)."""
    location = model.rsplit(":", 1)[0] if ":" in model else model
    path = Path(location)
    if location.lower().endswith((".py", ".csv", ".onnx")) and path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return model if ":" not in model and not path.suffix else None


def recipe_key(model: str, pe: str, bits: int, **choices: Any) -> str | None:
    """The key of the workload ``hwsim.api.workloads(model, [(pe, bits)], **choices)`` returns,
    or None when ``model`` cannot be named without importing it (see :func:`_model_source`)."""
    source = _model_source(model)
    if source is None:
        return None
    return _digest({"model": source, "pe": pe, "bits": bits, "choices": choices, "code": code_hash()})


class Cache:
    """Point results and workload fingerprints under ``root`` (None: a cache that keeps nothing)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def _path(self, group: str, key: str) -> Path | None:
        return None if self.root is None else self.root / group / key[:2] / f"{key}.json"

    def _get(self, group: str, key: str | None) -> Any:
        path = self._path(group, key) if key is not None else None
        if path is None or not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):  # a damaged entry is recomputed and rewritten
            return None

    def _put(self, group: str, key: str | None, value: Any) -> None:
        path = self._path(group, key) if key is not None else None
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HwsimError(f"cannot create cache folder {str(path.parent)!r}: {exc.strerror}; "
                             "give another with --cache-dir, or none") from None
        write_atomic(path, json.dumps(value))

    def totals(self, key: str) -> dict[str, float] | None:
        """The cached totals of point ``key`` (:func:`point_key`), or None."""
        return self._get("points", key)

    def put_totals(self, key: str, totals: dict[str, float]) -> None:
        self._put("points", key, totals)

    def fingerprint(self, recipe: str | None) -> str | None:
        """The cached fingerprint of the workload of ``recipe`` (:func:`recipe_key`), or None."""
        entry = self._get("workloads", recipe)
        return entry["fingerprint"] if isinstance(entry, dict) else None

    def put_fingerprint(self, recipe: str | None, fingerprint: str) -> None:
        self._put("workloads", recipe, {"fingerprint": fingerprint})
