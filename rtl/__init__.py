"""Amaranth generator of the accelerators that hwsim costs (PEs, PE array, buffers, controller).

Reads only :mod:`contract`, the :class:`~hwsim.accelerator.Accelerator` and its pure-Python plan
(:mod:`hwsim.rtl_plan`: geometry, word widths, capacity). Modules:

* :mod:`rtl.pe` -- :class:`~rtl.pe.PESpec` (shapes from the parameters, nothing built) and one
  :class:`~rtl.pe.ProcessingElement` per PE kind, all with the same ports and a two-stage
  pipeline after the operand registers, bit-exact with models.intref;
* :mod:`rtl.array` -- :class:`~rtl.array.SystolicArray`, an output-stationary ``rows x cols``
  array running one GEMM fold, and :func:`~rtl.array.fold_cycles`;
* :mod:`rtl.dsp` -- :func:`~rtl.dsp.registered_product`: a plain ``*`` behind a register or,
  generated for ECP5, a MULT18X18D with its output register on (Yosys packs none itself);
* :mod:`rtl.requant` -- :class:`~rtl.requant.OutputStage`: per-channel requantization (mac,
  adder, shift) or the xnor threshold compare / raw dot product;
* :mod:`rtl.im2col` -- the top's im2col on the fly: :class:`~rtl.im2col.LayerGeometry` (derived
  sizes), :class:`~rtl.im2col.PixelWalker` (each row's input coordinates),
  :class:`~rtl.im2col.OperandFetch` (buffer read ports to the array's operand stream, padding mask);
* :mod:`rtl.buffers` -- the top's buffer traffic: :class:`~rtl.buffers.Loader` (load streams,
  overrun flag), :class:`~rtl.buffers.ResultWriter` (array rows through the output stage into the
  out buffer; a K tile's partial sums added from and written to the psum buffer),
  :class:`~rtl.buffers.StoreStream` (out buffer onto the results port);
* :mod:`rtl.top` -- :class:`~rtl.top.LayerAccelerator`: the buffers and the layer controller (conv
  with kernel, stride, padding, groups; linear) joining those components, the array and the
  output stage; its exact cycles are :func:`hwsim.rtl_timing.layer_cycles`;
* :mod:`rtl.host` -- the host's side of the top: a quantized layer to descriptor and beats (a
  layer too large for the buffers as the tiles of :func:`hwsim.rtl_timing.tile_layer`, one
  descriptor each, K tiles of a long reduction included), result beats back to the integer output;
* :mod:`rtl.axi`, :mod:`rtl.dma`, :mod:`rtl.sequencer` -- the network accelerator: the top behind
  a command sequencer, a read and a write DMA engine and an AXI4 master
  (:class:`~rtl.sequencer.NetworkAccelerator`; its memory rules and exact cycles are
  :mod:`hwsim.rtl_sequence`'s); :mod:`rtl.netprog` -- its memory image and command list for a
  chain of layers;
* :mod:`rtl.emit` -- Verilog emission and :func:`~rtl.emit.generate` (PE, array, top and network
  accelerator of an Accelerator, linted, with one manifest);
* :mod:`rtl.tools` -- Verilator, Yosys and nextpnr lookup, lint, the tool errors;
* :mod:`rtl.synth` -- :func:`~rtl.synth.synthesize`: Yosys for xc7 / ice40 / ecp5 and nextpnr,
  parsed into LUTs, FFs, carry cells, DSPs, BRAMs and Fmax;
* :mod:`rtl.gatelevel` -- a PE's Yosys gate netlist in the technology table's cells, simulated
  on recorded operands (activity-based energy);
* :mod:`rtl.formal` / :mod:`rtl.formal_sby` -- protocol and buffer properties of the blocks and
  the top (Assert/Assume/Cover harnesses) and their SymbiYosys runs.
"""

from rtl.emit import generate
from rtl.synth import synthesize

__all__ = ["generate", "synthesize"]
