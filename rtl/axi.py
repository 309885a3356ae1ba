"""The memory port of the network accelerator: an AXI4 master (AMBA AXI4, ARM IHI 0022).

Why AXI4: it is the port that Vivado block designs, Zynq/ZynqMP high-performance ports, LiteX
(``soc.bus`` AXI) and most DDR controllers take without glue; Wishbone would need a bridge for
all of them, AXI4-Lite has no bursts (a beat per address), and AXI4-Stream carries no address,
so the accelerator could not fetch its own descriptors, weights and activations.

The data width is ``rtl.bus_bits`` (64 by default; 128, 256, 512). The port is the subset a DMA
master needs, with the standard signal names (so Vivado's IP
packager infers the interface from the ``m_axi_`` prefix): read address ``ar{addr,len,size,burst}``,
read data ``r{data,resp,last}``, write address ``aw{addr,len,size,burst}``, write data
``w{data,strb,last}``, write response ``b{resp}``, each with ``valid``/``ready``. No IDs (one
master, responses in order; up to :data:`~hwsim.rtl_sequence.MAX_OUTSTANDING` read bursts in
flight, so the slave must accept that many read addresses to stream at full rate), no cache/protection/QoS signals (tie them off in an interconnect:
``ARCACHE=0011``, ``ARPROT=000``). Bursts are INCR, full width (``size`` = log2 of the bus bytes), at most :data:`MAX_BURST` beats and never across a 4 KiB boundary, as the
specification requires (A3.4.1). Byte ``i`` of a data beat is the byte at address
``beat address + i`` (little-endian, as every AXI memory). The widths and the burst rule are
defined once in :mod:`hwsim.rtl_sequence`.
"""

from __future__ import annotations

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwsim.rtl_sequence import ADDR_BITS, BUS_BITS

__all__ = ["axi4_members"]

def axi4_members(prefix: str = "m_axi_", data_bits: int = BUS_BITS) -> dict[str, wiring.Member]:
    """The master-side members of a ``data_bits`` wide port (``Out`` = driven by the
    accelerator), flat with the standard names, for a component's signature."""
    a, d = ADDR_BITS, data_bits
    return {f"{prefix}{name}": member for name, member in {
        "araddr": Out(a), "arlen": Out(8), "arsize": Out(3), "arburst": Out(2),
        "arvalid": Out(1), "arready": In(1),
        "rdata": In(d), "rresp": In(2), "rlast": In(1), "rvalid": In(1), "rready": Out(1),
        "awaddr": Out(a), "awlen": Out(8), "awsize": Out(3), "awburst": Out(2),
        "awvalid": Out(1), "awready": In(1),
        "wdata": Out(d), "wstrb": Out(d // 8), "wlast": Out(1), "wvalid": Out(1), "wready": In(1),
        "bresp": In(2), "bvalid": In(1), "bready": Out(1),
    }.items()}

