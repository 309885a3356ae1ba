"""Amaranth generator of the accelerators that hwsim costs (PEs, PE array, buffers, controller).

Reads only :mod:`hwsim.accelerator`. Modules:

* :mod:`rtl.pe` -- one :class:`~rtl.pe.ProcessingElement` per PE kind (:class:`~rtl.pe.MacPE`,
  :class:`~rtl.pe.AdderPE`, :class:`~rtl.pe.ShiftPE`, :class:`~rtl.pe.XnorPE`), all with the same
  ports and a two-stage pipeline after the operand registers, bit-exact with models.intref;
* :mod:`rtl.array` -- :class:`~rtl.array.SystolicArray`, an output-stationary ``rows x cols``
  array running one GEMM fold, and :func:`~rtl.array.fold_cycles`;
* :mod:`rtl.requant` -- :class:`~rtl.requant.OutputStage`: per-channel requantization (mac,
  adder, shift) or the xnor threshold compare / raw dot product;
* :mod:`rtl.top` -- :class:`~rtl.top.LayerAccelerator`: buffers, the layer controller (conv with
  kernel, stride, padding, groups; linear) with im2col addressing, the array and the output stage;
  its exact cycles are :func:`hwsim.rtl_timing.layer_cycles`;
* :mod:`rtl.host` -- the host's side of the top: a quantized layer to descriptor and beats, result
  beats back to the integer output;
* :mod:`rtl.emit` -- Verilog emission, Verilator lint, :func:`~rtl.emit.generate` (PE and array)
  and :func:`~rtl.emit.generate_top` (the top) with their JSON manifests;
* :mod:`rtl.synth` -- :func:`~rtl.synth.synthesize`: Yosys for xc7 / ice40 / ecp5 and nextpnr,
  parsed into LUTs, FFs, carry cells, DSPs, BRAMs and Fmax.

Not yet: overlap of load, compute and store (double buffering); layers larger than the buffers
are not tiled through DRAM.
"""

from rtl.emit import generate, generate_top
from rtl.synth import synthesize

__all__ = ["generate", "generate_top", "synthesize"]
