"""Amaranth generator of the accelerators that hwsim costs (PEs, PE array, buffers, controller).

Reads only :mod:`hwsim.accelerator`. Modules:

* :mod:`rtl.pe` -- one :class:`~rtl.pe.ProcessingElement` per PE kind (:class:`~rtl.pe.MacPE`,
  :class:`~rtl.pe.AdderPE`, :class:`~rtl.pe.ShiftPE`, :class:`~rtl.pe.XnorPE`), all with the same
  ports and a two-stage pipeline after the operand registers, bit-exact with models.intref;
* :mod:`rtl.array` -- :class:`~rtl.array.SystolicArray`, an output-stationary ``rows x cols``
  array running one GEMM fold, and :func:`~rtl.array.fold_cycles`;
* :mod:`rtl.emit` -- Verilog emission, Verilator lint and :func:`~rtl.emit.generate`
  (Accelerator -> Verilog files and a manifest);
* :mod:`rtl.synth` -- :func:`~rtl.synth.synthesize`: Yosys for xc7 / ice40 / ecp5 and nextpnr,
  parsed into LUTs, FFs, carry cells, DSPs, BRAMs and Fmax.

Still to come (issue #3): buffers, the controller that runs a whole layer, the requantization /
threshold output stage and the accelerator top.
"""

from rtl.emit import generate
from rtl.synth import synthesize

__all__ = ["generate", "synthesize"]
