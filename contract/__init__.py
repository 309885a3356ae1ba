"""The integer contract: every hardware rule that more than one layer of hwsim needs, written once.

``models`` (the integer reference), ``cost_models`` (energy and area), ``hwsim`` (the cycle
model and the generated top's capacity plan) and ``rtl`` (the Amaranth generator) all import
this module and nothing here imports them: it is the leaf of the import graph, pure Python with
no third-party imports. What lives here is what would drift if written twice:

* the PE kinds and their operand-width limits (for estimation and for the generated hardware);
* the exact range and width of one PE accumulator, of the xnor dot product and of the
  requantization stage's parameters;
* latencies that the cycle model counts and the RTL implements (PE pipeline, output stage,
  descriptor and buffer-read cycles);
* the largest weight shift ``P`` and the width of a shift-weight code;
* lanes per PE, the operand width of the layers a binary network keeps at full precision, and
  the convolution output size.

Every function raises :class:`ContractError` (a ValueError) naming the bad argument.
"""

from __future__ import annotations

__all__ = [
    "ContractError", "DEFAULT_MAX_SHIFT", "MAX_ALIGN_LIMIT", "DESCRIPTOR_CYCLES", "FETCH_CYCLES", "GEOMETRY_BITS",
    "OPERAND_CYCLES", "act_banks",
    "GEOMETRY_CYCLES", "HAND_CYCLES",
    "CAPTURE_CYCLES",
    "HARDWARE_BITS", "MAX_SHIFT_LIMIT", "MODEL_BITS", "MULT_BITS", "OUTPUT_LATENCY", "PE_KINDS",
    "PIPELINE_CYCLES", "RSHIFT_BITS", "RSHIFT_MAX", "RSHIFT_MIN", "XNOR_AUX_BITS", "acc_bits",
    "acc_range", "align_field_bits", "check_bits", "conv_out_size", "dot_bits", "kind_bits", "lanes_per_pe",
    "layer_bits", "operand_bits", "range_width", "shift_field_bits", "steps", "term_range", "weight_code_bits",
]


class ContractError(ValueError):
    """An argument outside the integer contract; the message names it."""


#: The PE kinds, in the order reports and tables list them.
PE_KINDS = ("mac", "adder", "xnor", "shift")

#: Operand widths the cost models estimate (mac, adder, shift; xnor is always 1 bit).
MODEL_BITS = (2, 32)
#: Operand widths the integer quantizers and the generated hardware support: the requantization
#: product ``(acc + B) * M`` must stay within int64 (:data:`MULT_BITS`), which 16-bit operands do.
HARDWARE_BITS = (2, 16)
#: Operand width of the layers a binary (xnor) network keeps at full precision (stem, classifier).
XNOR_AUX_BITS = 8

#: Largest weight shift ``P`` of the shift datapath unless configured (DeepShift's 2**-7 range).
DEFAULT_MAX_SHIFT = 7
#: Largest ``P`` the generated shift PE accepts (its barrel shifter widens the operand by P bits).
MAX_SHIFT_LIMIT = 16

#: Largest per-group activation alignment ``E`` a grouped adder accepts: a group's scale is the
#: activation scale times ``2**-e`` with ``e`` in [0, E], so the PE computes ``|(x << e) - w|``
#: (AdderNet redistribution quantization; ``E = 0`` is the one shared scale).
MAX_ALIGN_LIMIT = 7

#: Register stages from the PE's operand registers to its accumulator (stage 1, then stage 2).
PIPELINE_CYCLES = 2
#: Register stages from a PE's finished sum to the array's drain register, with fold overlap.
CAPTURE_CYCLES = 1
#: Register stages of the output stage (requantization / threshold compare): the sum, the
#: product's two halves, their sum, the saturated shift (``rtl.requant``).
OUTPUT_LATENCY = 4
#: The layer descriptor is one beat.
DESCRIPTOR_CYCLES = 1
#: The store engine's read of the out buffer before its first result beat: the read, then a
#: register right behind the block RAM (``rtl.buffers.StoreStream``).
FETCH_CYCLES = 2
#: From an operand step's issue to its beat when the step is served in one cycle
#: (``rtl.im2col.OperandFetch``): the step's word addresses into a register, the banks' read,
#: a register right behind each block RAM (an ECP5 block RAM's clock-to-output, 5.8 ns, leaves
#: no time for a mux in the same cycle), then each row's word through the bank crossbar into
#: its own register.
OPERAND_CYCLES = 4
#: Register stages of the generated top's descriptor geometry (``rtl.im2col.LayerGeometry``):
#: a tile is handed from the loads to the run at the earliest this many cycles after its
#: descriptor register is written, so that every derived size is valid when the run copies it.
GEOMETRY_CYCLES = 6
#: From a tile's last load beat to the run side's take at the earliest (``rtl.controller``'s
#: HAND): the take is a gate of flip-flops, so the read DMA's beat handshake drives none of the
#: hundreds of registers it starts.
HAND_CYCLES = 1
#: Width of the kernel, stride and padding fields of the generated top's layer descriptor.
GEOMETRY_BITS = 4

#: Width of the signed requantization multiplier ``M``; ``2**(MULT_BITS-2) <= |M| < 2**(MULT_BITS-1)``.
MULT_BITS = 16
#: The requantization right shift ``S`` lies in ``[RSHIFT_MIN, RSHIFT_MAX]`` (``2**(S-1)`` rounds).
RSHIFT_MIN, RSHIFT_MAX = 1, 62
#: Stored width of ``S``.
RSHIFT_BITS = RSHIFT_MAX.bit_length()


def _int(name: str, value: object, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        noun = (f"an integer from {lo} to {hi}" if hi is not None else
                "a positive integer" if lo == 1 else f"an integer of at least {lo}")
        raise ContractError(f"`{name}` must be {noun}, not {value!r}")
    return value


def _kind(pe: object) -> str:
    if pe not in PE_KINDS:
        raise ContractError(f"unknown PE kind {pe!r}; choose one of {', '.join(PE_KINDS)}")
    return pe  # type: ignore[return-value]


def act_banks(rows: int) -> tuple[int, int]:
    """The activation buffer's banks for an array of ``rows`` rows: ``(B, k)``.

    Buffer word ``i`` lives in bank ``i mod B`` at index ``i >> k``. ``B`` is the smallest prime
    above ``rows`` (1 for one row), so the words of the rows of a step -- ``rows`` words in
    arithmetic progression whenever the row tile stays on one input line -- fall in distinct
    banks for every pixel pitch that is not a multiple of ``B`` (a power-of-two bank count would
    put every row of a 64-channel int8 layer in one bank); ``2**k <= B`` (``k`` the largest such),
    so two words at one index differ by less than ``B`` and never share a bank: each bank
    holds ``ceil(words / 2**k)`` words, ``B / 2**k`` of the buffer in all (11/8 for 8 rows,
    17/16 for 16) instead of a copy per row."""
    _int("rows", rows, 1)
    if rows == 1:
        return 1, 0
    banks = rows + 1
    while any(banks % d == 0 for d in range(2, int(banks ** 0.5) + 1)):
        banks += 1
    return banks, banks.bit_length() - 1


def check_bits(pe: str, bits: int, *, hardware: bool = False) -> int:
    """Return ``bits`` if PE kind ``pe`` supports that operand width, else raise.

    xnor takes exactly 1; the others :data:`MODEL_BITS` for estimation, :data:`HARDWARE_BITS`
    when the width is to be quantized or built (``hardware``).
    """
    _kind(pe)
    if pe == "xnor":
        if isinstance(bits, bool) or bits != 1:
            raise ContractError(f"the xnor datapath works on 1-bit operands, not {bits!r}; use --bits 1")
        return bits
    lo, hi = HARDWARE_BITS if hardware else MODEL_BITS
    where = "the integer quantizers and the generated hardware support" if hardware else \
        f"the {pe} datapath supports"
    if isinstance(bits, bool) or not isinstance(bits, int) or not lo <= bits <= hi:
        raise ContractError(f"{where} {lo} to {hi}-bit operands, not {bits!r}")
    return bits


def kind_bits(pe: str, bits: int) -> int:
    """The operand width of an accelerator moved to PE kind ``pe`` from width ``bits``: 1 for
    xnor; the other kinds keep ``bits``, or take :data:`XNOR_AUX_BITS` when leaving xnor's 1."""
    _kind(pe)
    if pe == "xnor":
        return 1
    return XNOR_AUX_BITS if bits == 1 else bits


def layer_bits(pe: str, bits: int) -> int:
    """Operand width of the layers of a network on a ``pe`` array of width ``bits`` that do not
    run on that array (and of the array's own layers except xnor): :data:`XNOR_AUX_BITS` for a
    binary network, ``bits`` otherwise."""
    return XNOR_AUX_BITS if _kind(pe) == "xnor" else bits


def lanes_per_pe(pe: str, lanes: int) -> int:
    """Reduction positions one PE takes per cycle: ``lanes`` for xnor, 1 for the other kinds."""
    return _int("lanes", lanes, 1) if _kind(pe) == "xnor" else 1


def shift_field_bits(max_shift: int) -> int:
    """Width of the shift amount ``p`` in ``[0, P]`` of a shift-weight code (at least 1 bit)."""
    return max(_int("max_shift", max_shift, 0).bit_length(), 1)


def weight_code_bits(max_shift: int) -> int:
    """Stored bits of one shift weight: ``p``, the sign and the zero flag (5 bits for P = 7)."""
    return shift_field_bits(max_shift) + 2


def align_field_bits(max_align: int) -> int:
    """Width of a grouped adder weight's alignment ``e`` in [0, E] (0 bits for the shared scale)."""
    return _int("max_align", max_align, 0, MAX_ALIGN_LIMIT).bit_length()


def operand_bits(pe: str, bits: int, *, max_shift: int = DEFAULT_MAX_SHIFT,
                 max_align: int = 0) -> tuple[int, int]:
    """Activation and stored weight width of one ``pe`` layer whose network runs at ``bits``:
    xnor 1 and 1; shift ``bits`` and the shift-weight code; mac ``bits`` twice; adder ``bits``
    and ``bits`` plus the group alignment field (:func:`align_field_bits`)."""
    if _kind(pe) == "xnor":
        return 1, 1
    check_bits(pe, bits)
    if pe == "shift":
        return bits, weight_code_bits(max_shift)
    return bits, bits + (align_field_bits(max_align) if pe == "adder" else 0)


def steps(pe: str, k: int, lanes: int = 1) -> int:
    """Beats one PE takes for a ``k``-long reduction: ``k``, or ``ceil(k / lanes)`` words (xnor)."""
    per = lanes_per_pe(pe, lanes)
    return -(-_int("k", k, 1) // per)


def term_range(pe: str, bits: int, *, max_shift: int = DEFAULT_MAX_SHIFT, lanes: int = 1,
               max_align: int = 0) -> tuple[int, int]:
    """Smallest and largest value one beat adds to a PE accumulator, over all operand values.

    mac ``x * w`` over the full two's-complement range of both operands (``(-2**(b-1))**2`` at the
    top); adder ``-|(x << e) - w|`` with ``e <= E = max_align``, in
    ``[-(2**(b-1) * (2**E + 1) - 1), 0]`` (``[-(2**b - 1), 0]`` for the shared scale); shift ``s * (x << (P - p))`` in
    ``[-2**(b-1+P), 2**(b-1+P)]``; xnor the count of agreeing lanes in ``[0, lanes]``.
    """
    check_bits(pe, bits)
    if pe == "xnor":
        return 0, lanes_per_pe(pe, lanes)
    half = 1 << (bits - 1)
    if pe == "mac":
        return -half * (half - 1), half * half
    if pe == "adder":
        return -(half * ((1 << _int("max_align", max_align, 0, MAX_ALIGN_LIMIT)) + 1) - 1), 0
    top = 1 << (bits - 1 + _int("max_shift", max_shift, 0))
    return -top, top


def acc_range(pe: str, k: int, bits: int, *, max_shift: int = DEFAULT_MAX_SHIFT,
              lanes: int = 1, max_align: int = 0) -> tuple[int, int]:
    """Exact range of a PE accumulator after a ``k``-long reduction (``steps`` beats of
    :func:`term_range`; an xnor PE counts whole words, padded lanes included)."""
    lo, hi = term_range(pe, bits, max_shift=max_shift, lanes=lanes, max_align=max_align)
    n = steps(pe, k, lanes)
    return min(n * lo, 0), max(n * hi, 0)


def range_width(lo: int, hi: int) -> tuple[int, bool]:
    """``(width, signed)`` of the narrowest two's-complement (or, for ``lo >= 0``, unsigned)
    integer holding every value in ``[lo, hi]``."""
    if lo > hi:
        raise ContractError(f"empty range [{lo}, {hi}]")
    if lo < 0:
        return max((-lo - 1).bit_length(), hi.bit_length()) + 1, True
    return max(hi.bit_length(), 1), False


def acc_bits(pe: str, k: int, bits: int, *, max_shift: int = DEFAULT_MAX_SHIFT, lanes: int = 1,
             max_align: int = 0) -> int:
    """Width of the accumulator that holds any ``k``-long reduction on PE kind ``pe``: exactly
    :func:`range_width` of :func:`acc_range`. The generated PE, the cost model and the integer
    reference (mac, adder, shift) all use it; mac K=9 at 8 bits: 19 bits, K=8: 19 bits."""
    return range_width(*acc_range(pe, k, bits, max_shift=max_shift, lanes=lanes,
                                  max_align=max_align))[0]


def dot_bits(k: int) -> int:
    """Signed width of an xnor dot product ``K - 2 * popcount(x XOR w)`` in ``[-K, K]``, which
    the output stage emits as the raw result and sizes its thresholds with."""
    n = _int("k", k, 1)
    return range_width(-n, n)[0]


def conv_out_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution along one axis: ``(size + 2p - d(k-1) - 1) // s + 1``.

    Raises :class:`ContractError` when the (dilated) kernel is larger than the padded input.
    """
    _int("size", size, 1)
    _int("kernel", kernel, 1)
    _int("padding", padding, 0)
    span = _int("dilation", dilation, 1) * (kernel - 1) + 1
    if size + 2 * padding < span:
        raise ContractError(f"kernel {kernel} (dilation {dilation}) is larger than the padded "
                            f"input {size + 2 * padding}")
    return (size + 2 * padding - span) // _int("stride", stride, 1) + 1
