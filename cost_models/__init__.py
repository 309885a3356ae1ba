"""Datapath and memory cost models (energy, area, latency, throughput) from cited technology tables."""

PE_KINDS = ("mac", "adder", "xnor", "shift")


def check_bits(pe: str, bits: int) -> None:
    """Raise ValueError if datapath ``pe`` cannot run at operand width ``bits``."""
    if pe == "xnor":
        if bits != 1:
            raise ValueError(f"the xnor datapath works on 1-bit operands, not {bits}; use --bits 1")
    elif not 2 <= bits <= 32:
        raise ValueError(f"the {pe} datapath supports 2 to 32 bits, not {bits}")
