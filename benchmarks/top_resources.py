"""LUT, FF, BRAM, DSP and Fmax of the whole accelerator top per PE kind, with Yosys's wall time.

    python benchmarks/run.py top_resources [-- --kinds mac,adder,xnor,shift --arrays 8x8,16x16
                                               --targets ecp5,xc7 --module top|network --no-pnr
                                               --ooc --sram-kib KIB --config F --timeout 1800 --json F]

``--module network --sram-kib 2 --targets ecp5`` places the network accelerator (the top behind
the sequencer, the DMA engines and the AXI4 master: ~280 I/O pins) with 2 KiB buffers, which fits
the LFE5U-85F at 8x8; with place and route the array of the same accelerator is placed too and
each row gives the module's Fmax against the array's (the issue's goal: >= 0.80) and the critical
path nextpnr reports (:func:`rtl.synth.critical_path`: start and end, logic levels, ns). An array
whose ports outnumber the pins (xnor: 64-lane operands) is placed behind registers
(:class:`rtl.emit.BehindRegisters`, ``array_reference`` in the JSON).

Every top is the one ``hwsim rtl synth --pe KIND --array RxC --target T`` builds (the kind's
preset, 8-bit operands, xnor 1-bit; the preset 64 KiB buffers), emitted per kind, array and
target (for ECP5 with the products' registers in the DSP blocks, :mod:`rtl.dsp`) and synthesized
with :func:`rtl.synth.synthesize` (mac with DSPs where the target has them). ``--ooc`` places out
of context (no I/O buffers: the module as a core inside an SoC, its ports not pins). On
ECP5 it is placed and routed with nextpnr-ecp5 on the LFE5U-85F (CABGA381) when it fits
(:func:`rtl.synth.device_overflow`: LUTs, FFs, BRAMs, DSPs and I/O pins); otherwise the Fmax is
``-`` and the reason is printed. Per run: the Yosys wall time and its slowest pass, and whether
every memory became block RAM (a memory flattened into flip-flops and multiplexers is named).
A run longer than ``--timeout`` seconds is killed and reported. Results go to ``--json`` (default
``build/bench/top_resources.json``); build products to ``build/bench/tops``.

Before (main at 30eaaa5, 2026-12-06 15:10-15:29 UTC, Yosys 0.50 (yowasp), 2 cores shared with two
other sessions' test runs, load average 6.0 at the start, 7-9.5 during, 5.5 at the end). Every
buffer in block RAM in every run (only the controller's 8 x 1 case-statement ROM in logic); no
Fmax: every 8x8 top needs more DP16KD than the 208 of the LFE5U-85F (the activation buffer alone
256 of them: one copy per array row's read port) and more I/O pins than its 365. xc7 BRAM counts
RAMB36E1 + RAMB18E1 cells (adder: 166 + 33)::

    kind    array target |     LUT      FF  BRAM  DSP   I/O   Fmax | Yosys s | slowest passes (s)
    mac       8x8 ecp5   |  16,260   8,593   364   89   706      - |     177 | autoname 48, opt_clean 23, abc9_exe 21
    mac       8x8 xc7    |   9,058   4,944   182   89   706      - |     157 | techmap 28, opt_dff 23, abc 19
    adder     8x8 ecp5   |  16,757   7,598   365   25   706      - |      95 | abc9_exe 28, autoname 16, opt_clean 10
    adder     8x8 xc7    |  10,274   5,445   199   25   706      - |      65 | abc 12, techmap 10, opt_dff 9
    xnor      8x8 ecp5   |  27,433  17,095   351   10   994      - |     168 | abc9_exe 39, autoname 30, opt_clean 26
    xnor      8x8 xc7    |  14,867  15,231   190    9   994      - |     154 | abc 38, opt_clean 27, opt_dff 15
    shift     8x8 ecp5   |  19,187   8,268   359   25   682      - |      96 | autoname 22, abc9_exe 17, opt_clean 13
    shift     8x8 xc7    |  12,384   6,043   187   25   682      - |      97 | techmap 17, abc 16, opt_dff 14

16x16 (adder, mac; both targets): no figures. Yosys died in MEMORY_LIBMAP after 80-390 s, out of
memory (``bad_alloc``: yowasp's WebAssembly Yosys has 4 GiB), on the activation buffer with 16 read
ports. In a throw-away copy whose top declares one copy of that buffer per array row (one read
port each, same contents; tests/test_rtl_top.py passes) the adder 16x16 top synthesizes on ECP5
(521 s wall at load 6-8): 42,048 LUT, 21,374 FF, 624 DP16KD (the 16 copies 512 of them), 41 DSP,
1,266 I/O pins.

After (main at 4c746be, the same day 16:13-16:45 UTC: wide activation beats, the residual add, two
out banks and the store engine, one activation buffer copy per array row; load 1.7-3.8, the
16x16 runs 1.8-3.4). Every buffer in block RAM; still no Fmax (BRAM and I/O pins)::

    kind    array target |     LUT      FF  BRAM  DSP   I/O   Fmax | Yosys s  CPU s | slowest passes (s)
    mac       8x8 ecp5   |  17,892   8,935   396   96   829      - |     127     50 | opt_clean 26, abc9_exe 21
    mac       8x8 xc7    |  10,000   5,033   198   96   829      - |      46     45 | techmap 8, abc 7
    adder     8x8 ecp5   |  18,409   7,940   397   32   829      - |      46     46 | abc9_exe 13, opt_clean 7
    adder     8x8 xc7    |  11,219   5,557   215   32   829      - |      51     50 | techmap 9, abc 8
    xnor      8x8 ecp5   |  28,204  17,255   383   17  1133      - |      96     95 | abc9_exe 28, opt_clean 19
    xnor      8x8 xc7    |  15,283  15,326   206   16  1133      - |     228    106 | opt_clean 49, abc 43
    shift     8x8 ecp5   |  20,585   8,610   391   32   805      - |      92     47 | abc9_exe 33, techmap 19
    shift     8x8 xc7    |  13,438   6,155   203   32   805      - |      90     51 | techmap 19, read_verilog 14
    adder   16x16 ecp5   |  42,663  21,787   654   48  1453      - |     141    115 | abc9_exe 31, opt_clean 21
    mac     16x16 ecp5   |  41,315  25,447   647  304  1453      - |     122    107 | abc9_exe 27, opt_clean 22

Against before: 6-10 % more LUTs (the fetch's lane multiplexers, the residual adder, the out
bank multiplexers), one more out bank of block RAM (+32 DP16KD at 8x8), +123 I/O pins (``i_acts``
is a 64-bit beat, ``i_resid`` a new out word), the 8x8 runs at 45-106 CPU seconds (under 3
minutes; before 65-177 wall seconds at load 6-9.5), and the 16x16 tops now synthesize (before:
out of memory).

Double-buffered (main at d6741df, the same day 18:39-18:51 UTC, load 2.3-3.8): two banks of
every buffer but the psum buffer (the activation buffer's per-row copies in each), two controller
FSMs. Every buffer in block RAM (23 memories of 23); still no Fmax (BRAM and I/O pins)::

    kind    array target |     LUT      FF  BRAM  DSP   I/O   Fmax | Yosys s  CPU s | slowest passes (s)
    mac       8x8 ecp5   |  19,850   9,244   696   96   829      - |     116     61 | abc9_exe 29, opt_clean 22
    mac       8x8 xc7    |  10,998   5,485   348   96   829      - |      69     49 | abc 14, opt_dff 9
    adder     8x8 ecp5   |  20,551   8,249   697   32   829      - |     119     62 | abc9_exe 31, opt_clean 19
    adder     8x8 xc7    |  11,849   6,009   365   32   829      - |     113     57 | opt_dff 19, abc 17
    xnor      8x8 ecp5   |  30,731  17,563   672   17  1133      - |     201    102 | abc9_exe 57, opt_clean 39
    xnor      8x8 xc7    |  16,549  15,746   365   16  1133      - |     218    100 | abc 68, opt_clean 39
    shift     8x8 ecp5   |  22,463   8,919   686   32   805      - |     150     64 | abc9_exe 34, opt_clean 25
    shift     8x8 xc7    |  14,484   6,584   358   32   805      - |     172     66 | opt_dff 35, opt_clean 26

The 16x16 tops, double-buffered (same commit, 19:00-19:30 UTC, load 2.5-3.8; xnor 16x16 xc7 not
run: stopped for the CI run)::

    kind    array target |     LUT      FF  BRAM  DSP   I/O   Fmax | Yosys s  CPU s
    adder   16x16 ecp5   |  43,306  19,941  1209   48  1453      - |     181    118
    adder   16x16 xc7    |  29,462  18,172   643   48  1453      - |     272    143
    mac     16x16 ecp5   |  42,549  23,601  1202  304  1453      - |     128    127
    mac     16x16 xc7    |  28,042  16,761   620  304  1453      - |     130    128
    xnor    16x16 ecp5   | 100,153  58,288  1190   17  2013      - |     397    354

Against the single-banked top: block RAM nearly doubles (ECP5 adder 397 -> 697 DP16KD: the
activation buffer's 8 copies are 512 of them), 6-12 % more LUTs (the bank multiplexers on every
buffer read, the second loop nest), 2-9 % more FFs (the run side's copy of the descriptor and its
geometry), Yosys 49-102 CPU seconds (under 3 minutes).

Network accelerator on ECP5 with place and route (branch fmax, 2026-12-06 18:13-19:40 UTC; 2 KiB
buffers: ``--module network --sram-kib 2 --targets ecp5``; load 1.1-3.5, two other sessions' Yosys,
SymbiYosys and benchmark runs beside it, so the nextpnr wall times are inflated). Fmax is
nextpnr-ecp5's on the LFE5U-85F (speed 6); ``array`` the PE array of the same accelerator placed
alone (xnor: behind registers, its operand ports alone need 565 pins); critical paths as
:func:`rtl.synth.critical_path` names them::

    kind  array |    LUT     FF BRAM DSP | Fmax  array ratio | critical path of the network (levels, ns)        | Yosys s pnr s
    adder   4x4 |  9,453  4,081   15  24 | 71.6  165.2  0.43 | top.out_buf1 (DP16KD) -> out bank write data, 6, 13.98 |   27   156
    mac     4x4 |  9,526  4,371   15  40 | 75.6  133.6  0.57 | top.out_buf0 (DP16KD) -> out bank write data, 5, 13.23 |   26   141
    xnor    4x4 | 11,109  6,054   22  17 | 79.1   84.6  0.93 | top.array.i_x -> top.array.pe_3_2.p (popcount), 13, 12.6  |   28   120
    shift   4x4 | 10,373  4,460   21  24 | 70.0  160.4  0.44 | top.out_buf1 (DP16KD) -> out bank write data, 5, 14.29 |   26   116
    adder   8x8 | 16,713  8,165   29  32 | 70.7  113.1  0.63 | top.out_buf1 (DP16KD) -> out bank write data, 6, 14.14 |   38   250
    mac     8x8 | 17,031  9,163   30  96 | 71.8  113.0  0.64 | top.psum_buf (DP16KD) -> output.sum1, 3, 13.92         |   57   552
    shift   8x8 | nextpnr-ecp5 did not finish in 1500 s (routing congestion, at load 3.5)
    (xnor 8x8: not run for lack of time.) Before (main at 7980471, the same command, 19:20 UTC, load 2.9):
    adder   4x4 | 10,361  4,097   15  28 | 57.6  165.2  0.35 | top.out_buf0 (DP16KD) -> out bank write data, 6, 17.38 |   28   123

"out bank write data" is the register Yosys adds to emulate read-first on an out bank
(``$auto$mem.cc:1619:emulate_read_first``): the path is the bank's read (5.6-5.8 ns clock to
output of a DP16KD without its output register), the bank select (rtl/top.py), the residual
select (rtl/buffers.py), the output stage's residual add and clamp (rtl/requant.py, a ``bits + 3``
bit add and one LUT; before, an add and two compares as wide as the ~50-bit product) and the
write-data select (rtl/top.py). The xnor network runs at 0.93 of its array: its critical path is
the array's own popcount. The arrays' own paths: adder 8x8 the array's FSM state fanning out to
the accumulators (8.8 ns), mac the PE's multiplier (DSP, 7.5-8.9 ns). The requantization multipliers are DSP blocks: 2 MULT18X18D per column on ECP5
(adder 8x8: 16 of the 32; the other 16 are rtl/im2col's), 2 DSP48E1 per column on xc7; with
``--lut-only`` none (adder 8x8 network: ECP5 16,713 -> 35,566 LUTs, xc7 9,886 -> 23,890).
These network runs are of the single-banked top (the fmax branch predates the double-buffered
inputs).

Register stages for Fmax (main at 5e6727d, 2026-12-07 01:05-01:21 UTC, load 1-2.5): a register
behind every block RAM read of the operand fetch (``contract.OPERAND_CYCLES`` 2, kept as
flip-flops: folded into the read ports, Yosys 0.50's ABC9 fails on the 8x8 ECP5 top), the
requantization product as two DSP-sized halves (``contract.OUTPUT_LATENCY`` 4), the geometry's
``act_words`` one DSP, the loop ends and the walker's and store engine's flags as registers, the
input buffers' two banks one memory each (bank = top address bit). ``--no-pnr``::

    kind    array target |     LUT      FF  BRAM  DSP   I/O   Fmax | Yosys s  CPU s
    adder     8x8 ecp5   |  18,659  11,986   709   29   830      - |      61     60
    adder     8x8 xc7    |  11,787  10,501   371   29   830      - |      61     60
    mac       8x8 ecp5   |  18,618  13,605   708   93   830      - |      61     60
    mac       8x8 xc7    |   9,630   9,010   354   93   830      - |      53     53

Against the session before (fold overlap, depthwise mode: ECP5 adder 19,034 LUT / 10,758 FF /
697 BRAM / 32 DSP, xc7 12,552 / 9,629 / 365; mac 18,508 / 12,353 / 696 / 96, xc7 10,413 / 8,137
/ 348): 2-8 % fewer LUTs but on mac ECP5 (+0.6 %), 9-11 % more FFs (a buffer word per array row
behind the activation block RAMs, the output stage's fourth stage), 6-12 more block RAMs (a
memory of ``2**n + depth`` words where two of ``depth`` were), 3 fewer DSPs (the geometry's
``act_words``). The network accelerator, adder 4x4, 2 KiB buffers, ECP5 with place and route:
94.7 MHz = 0.57 x its array's 165.2 (before: 79.3 MHz, 0.48), 9,856 LUT / 5,787 FF / 22 BRAM /
21 DSP (before 11,391 / 5,486 / 24 / 24); its critical path then the out bank's block-RAM read
into the write DMA's beat register (4 levels, 10.56 ns, 6.57 of them in cells). With the store
engine's register behind that block RAM (``contract.FETCH_CYCLES`` 2, the next commit): 91.5 MHz
in that run (placement varies by +-3 MHz), the path now the read DMA's beat through the loader
into the load nest's end flags (8 levels, 10.9 ns, 7.5 of them routing).

Banked activation buffer (main at dd258c6, 2026-12-07 04:14-04:20 UTC, load 3.2-4.2): with fold
overlap the activation buffer is ``B`` = 11 banks for 8 rows (:func:`contract.act_banks`, word
``i`` in bank ``i mod 11`` at ``i >> 3``), one read port each, the operand fetch serving each
step's rows from them through a crossbar (``contract.OPERAND_CYCLES`` 4), instead of a copy per
array row. ``--no-pnr``::

    kind    array target |     LUT      FF  BRAM  DSP   I/O   Fmax | Yosys s  CPU s
    adder     8x8 ecp5   |  26,089  13,262   285   29   830      - |      86     77
    adder     8x8 xc7    |  16,220  11,754   159   29   830      - |      71     69
    mac       8x8 ecp5   |  25,745  14,881   284   93   830      - |      75     74
    mac       8x8 xc7    |  14,230  10,301   142   93   830      - |      64     63

16x16 (main at 2f280ef, the helper's DMA/controller merge 42ea761 landing during the mac runs,
04:35-04:52 UTC, load 3-4; 17 banks)::

    adder   16x16 ecp5   |  64,337  35,833   264   45  1454      - |     208    204
    adder   16x16 xc7    |  41,483  33,117   176   45  1454      - |     277    207
    mac     16x16 ecp5   |  64,507  41,893   257  301  1454      - |     217    209
    mac     16x16 xc7    |  34,223  27,649   153  301  1454      - |     168    166

(against the last 16x16 rows measured, with a copy per row, at the top of this list -- before
the double-buffered inputs, so only indicative: adder ECP5 42,663 LUT / 21,787 FF / 654 BRAM,
mac 41,315 / 25,447 / 647; Yosys 3.5 CPU minutes where those took about 2).

The activation buffer: 88 DP16KD on ECP5 (11 memories of 8) where the copies took 512, 44
RAMB36 on xc7 where they took 256; block RAM in all 709 -> 285 (ECP5), 371 -> 159 (xc7). The
price is logic: +38-40 % LUTs on ECP5, +38-48 % on xc7 (each row's 11:1 crossbar of a 64-bit
word, each bank's pick of its lowest waiting row's address, the bank residues of the rows'
words and of the load address), +11-13 % FFs (the step's record in the request register, the
service stage and three beat stages). The preset's buffers still exceed the LFE5U-85F's 208
DP16KD (285), now by the out, parameter, psum and weight buffers as much as the activations.

Every kind, banked (main at afe4861, 2026-12-07 09:49-10:09 UTC, load 0.2-2.6; ECP5 with the
products' registers in its DSP blocks, :mod:`rtl.dsp`; the session's cuts for Fmax). ``--no-pnr``::

    kind    array target |     LUT      FF  BRAM  DSP   I/O   Fmax | Yosys s  CPU s
    adder     8x8 ecp5   |  24,189  13,614   285   30   830      - |      73     72
    adder     8x8 xc7    |  15,879  12,755   159   30   830      - |      64     62
    mac       8x8 ecp5   |  24,002  15,489   284   94   830      - |      66     64
    mac       8x8 xc7    |  13,708  11,287   142   94   830      - |      60     58
    xnor      8x8 ecp5   |  27,859  21,250   243   15  1134      - |     163    105
    xnor      8x8 xc7    |  19,849  21,029   150   14  1134      - |     107    106
    shift     8x8 ecp5   |  26,223  15,161   267   30   806      - |      77     76
    shift     8x8 xc7    |  18,553  13,903   151   30   806      - |      75     74

Against the banked rows above (dd258c6): adder and mac 2-7 % fewer LUTs (ECP5 26,089 -> 24,189
and 25,745 -> 24,002), FFs within 3 %. xnor and shift against their last rows (double-buffered
with a copy per row, d6741df): block RAM 672 -> 243 and 686 -> 267 DP16KD on ECP5 (365 -> 150
and 358 -> 151 on xc7: the activation buffer's 11 banks of 8 DP16KD where its copies took 512),
and the banks' price in logic and registers (xnor ECP5 30,731 -> 27,859 LUTs but 17,563 ->
21,250 FFs; shift 22,463 -> 26,223 LUTs, 8,919 -> 15,161 FFs: the fetch's step records and beat
stages, the output stage's fourth register, the loop flags kept as registers). Every buffer in
block RAM, Yosys under 2 CPU minutes for every 8x8 top.

The 16x16 tops of every kind, banked (main at 638f923, 2026-12-07 13:19-14:20 UTC, load 1-2.5
with other runs beside; 17 banks). ``--arrays 16x16 --no-pnr``::

    kind    array target |     LUT      FF  BRAM  DSP   I/O   Fmax | Yosys s  CPU s
    adder   16x16 ecp5   |  62,370  36,625   264   47  1454      - |     280    245
    adder   16x16 xc7    |  42,468  35,001   176   46  1454      - |     297    260
    mac     16x16 ecp5   |  63,043  43,197   257  303  1454      - |     274    263
    mac     16x16 xc7    |  34,450  29,525   153  302  1454      - |     261    258
    shift   16x16 ecp5   |  73,249  41,969   240   47  1406      - |     323    301
    shift   16x16 xc7    |  53,934  39,584   120   46  1406      - |     318    279
    xnor    16x16 ecp5   | 116,209  70,955   225   16  2014      - |     599    521
    xnor    16x16 xc7    |  68,031  70,905   170   14  2014      - |     501    498

Against the double-buffered copies (d6741df): block RAM 1,209 -> 264 (adder ECP5), 1,202 -> 257
(mac), 1,190 -> 225 (xnor); LUTs +44 % (adder ECP5 43,306 -> 62,370), +16 % (xnor), FFs +84 %
(adder 19,941 -> 36,625): at 16 rows the fetch's crossbar (each row's 17:1 pick of a 64-bit
word and its own word register) and the 120 row pairs' share/clash flags grow with the rows
squared. Every buffer in block RAM; Yosys 4-9 CPU minutes.

Compare runs by ``CPU s`` (``yosys_cpu``: user + system seconds from the kernel, :func:`rtl.synth.
run_tool`), not by wall time, when the load differs: at load 8 a Yosys run got 111 CPU seconds in
557 wall seconds. (The before runs above predate that figure: their times are wall times; Yosys's
own "CPU" footer under WebAssembly reports the wall clock.)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contract import PE_KINDS  # noqa: E402
from hwsim.api import resolve_accelerator  # noqa: E402
from hwsim.errors import ToolError  # noqa: E402
from rtl.dsp import dsp_family  # noqa: E402
from rtl.emit import generate  # noqa: E402
from hwsim_cli.options import positive_float  # noqa: E402
from rtl.synth import PNR_DEVICE, find_tools, synthesize  # noqa: E402

TARGETS = ("ecp5", "xc7")


def _commit() -> str | None:
    """The checked-out commit of this tree (None outside git)."""
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return done.stdout.strip() or None if done.returncode == 0 else None


def _array(text: str) -> tuple[int, int]:
    rows, _, cols = text.partition("x")
    return int(rows), int(cols or rows)


def _run(verilog: Path, name: str, target: str, *, pnr: bool, timeout: float, ooc: bool = False) -> dict[str, Any]:
    """Synthesize (and on ECP5 place, ``ooc`` out of context) one emitted top; its figures, or its
    failure as ``error``."""
    start = time.monotonic()
    try:
        r = synthesize(verilog, name, target, pnr=pnr and target in PNR_DEVICE, ooc=ooc and pnr,
                       outdir=verilog.parent / f"{name}_{target}", timeout=timeout)
    except ToolError as exc:
        return {"error": str(exc), "seconds": {"total": round(time.monotonic() - start, 1)}}
    return {key: r.get(key) for key in ("lut", "ff", "carry", "bram", "dsp", "io", "fmax_mhz", "pnr_skipped",
                                        "critical_path", "dsp_sources", "memories", "seconds", "passes",
                                        "cells", "yosys", "dir")}


def _path(r: dict[str, Any]) -> str:
    """A critical path in a few words: ``out_buf0.0.0 (DP16KD) -> ...emulate_read_first$58[0]
    (TRELLIS_FF), 6 lv, 13.2 ns``; ``-`` without one."""
    path = r.get("critical_path")
    if not path:
        return "-"
    def short(cell: str) -> str:
        return cell if len(cell) <= 48 else "..." + cell[-45:]
    return f"{short(path['from'])} -> {short(path['to'])}, {path['levels']} lv, {path['delay_ns']:.1f} ns"


def _table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'kind':6} {'array':>6} {'target':6} | {'LUT':>7} {'FF':>7} {'BRAM':>5} {'DSP':>4} "
            f"{'I/O':>5} {'Fmax':>6} {'array':>6} {'ratio':>5} | {'Yosys s':>7} {'CPU s':>6} {'pnr s':>6} | "
            f"{'mems in BRAM':>12} | slowest passes (s)")
    lines = [head, "-" * len(head)]
    for r in rows:
        where = f"{r['kind']:6} {r['array']:>6} {r['target']:6} |"
        if "error" in r:
            lines.append(f"{where} {r['error']}")
            continue
        fmax = f"{r['fmax_mhz']:.1f}" if r.get("fmax_mhz") else "-"
        array = f"{r['array_fmax_mhz']:.1f}" if r.get("array_fmax_mhz") else "-"
        ratio = f"{r['fmax_mhz'] / r['array_fmax_mhz']:.2f}" if r.get("fmax_mhz") and r.get("array_fmax_mhz") else "-"
        buffers = [m for m in r["memories"].values() if m["kind"] != "rom"]  # not the case-statement ROMs
        mems = f"{sum(m['kind'] == 'bram' for m in buffers)} of {len(buffers)}"
        passes = ", ".join(f"{name} {sec:.0f}" for name, _, sec in r["passes"][:3])
        lines.append(f"{where} {r['lut']:7,} {r['ff']:7,} {r['bram']:5} {r['dsp']:4} {r['io']:5} {fmax:>6} "
                     f"{array:>6} {ratio:>5} | "
                     f"{r['seconds']['yosys']:7.0f} {r['seconds'].get('yosys_cpu', 0):6.0f} "
                     f"{r['seconds'].get('nextpnr', 0):6.0f} | "
                     f"{mems:>12} | {passes}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default=",".join(PE_KINDS), help="PE kinds, comma-separated (default all)")
    parser.add_argument("--arrays", default="8x8,16x16", help="arrays RxC, comma-separated (default 8x8,16x16)")
    parser.add_argument("--targets", default=",".join(TARGETS), help="ecp5 and/or xc7 (default both)")
    parser.add_argument("--module", choices=("top", "network"), default="top",
                        help="the layer top (default; its streams need 680-992 pins) or the network "
                             "accelerator around it (AXI4 master, rtl.sequencer)")
    parser.add_argument("--no-pnr", action="store_true", help="skip nextpnr-ecp5 (no Fmax)")
    parser.add_argument("--ooc", action="store_true",
                        help="place out of context (no I/O buffers; the ports are not pins), as a core in an SoC")
    parser.add_argument("--sram-kib", type=positive_float, metavar="KIB",
                        help="each per-operand buffer in KiB (default: the config's, else the preset's 64)")
    parser.add_argument("--config", metavar="F", help="an accelerator YAML applied before --sram-kib")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per tool run before it is killed")
    parser.add_argument("--json", metavar="F", default=str(ROOT / "build" / "bench" / "top_resources.json"),
                        help="where the results go (default build/bench/top_resources.json)")
    args = parser.parse_args(argv)
    kinds, targets = args.kinds.split(","), args.targets.split(",")
    arrays = [_array(a) for a in args.arrays.split(",")]
    bad = [k for k in kinds if k not in PE_KINDS] + [t for t in targets if t not in TARGETS]
    if bad:
        parser.error(f"unknown kind or target {bad[0]!r}")
    for target in targets:
        find_tools(target, pnr=not args.no_pnr and target in PNR_DEVICE)
    out = ROOT / "build" / "bench" / "tops"
    load = os.getloadavg()
    rows: list[dict[str, Any]] = []
    record = {"commit": _commit(), "load_average_before": load, "runs": rows}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    record["sram_kib"], record["config"], record["out_of_context"] = args.sram_kib, args.config, args.ooc
    for array in arrays:
        for kind in kinds:
            acc = resolve_accelerator(config=args.config, pe=kind, array=array, sram_kib=args.sram_kib)
            modules = (args.module, "array", "array_regs")
            for target in targets:
                # as `hwsim rtl synth` builds it: on ECP5 the products' registers in the DSP blocks
                dsp = dsp_family(target, lut_only=False)
                made = generate(acc, out / f"{kind}_{array[0]}x{array[1]}" / f"{args.module}{'_' + dsp if dsp else ''}",
                                modules=modules, lint=False, dsp=dsp)
                name = made.manifest["modules"][args.module]["top"]
                placed = not args.no_pnr and target in PNR_DEVICE
                print(f"{name} {array[0]}x{array[1]} on {target} ...", flush=True)
                row = {"kind": kind, "array": f"{array[0]}x{array[1]}", "target": target, "module": name,
                       "bits": acc.bits, "buffers_kib": list(acc.srams_kib),
                       **_run(made.verilog(args.module), name, target, pnr=not args.no_pnr, timeout=args.timeout,
                              ooc=args.ooc)}
                if placed and row.get("fmax_mhz"):  # the reference: the array of the same accelerator,
                    for role in ("array", "array_regs"):  # behind registers when its ports outnumber the pins
                        name_of = made.manifest["modules"][role]["top"]
                        print(f"{name_of} {array[0]}x{array[1]} on {target} ...", flush=True)
                        alone = _run(made.verilog(role), name_of, target, pnr=True, timeout=args.timeout, ooc=args.ooc)
                        row |= {"array_fmax_mhz": alone.get("fmax_mhz"), "array_reference": role,
                                "array_critical_path": alone.get("critical_path")}
                        if alone.get("fmax_mhz") or "pnr_skipped" not in alone:
                            break
                rows.append(row)
                Path(args.json).write_text(json.dumps(record, indent=2) + "\n")  # partial results survive
    buffers = f"{args.sram_kib:g} KiB buffers" if args.sram_kib else "the preset buffers"
    print(f"\nAccelerator {args.module}s with {buffers}{', placed out of context' if args.ooc else ''} "
          f"(rtl.synth; load average before: "
          f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}, after: {' '.join(f'{x:.1f}' for x in os.getloadavg())})")
    print(_table(rows))
    for r in rows:
        if r.get("critical_path"):
            print(f"{r['kind']} {r['array']} on {r['target']}: critical path {_path(r)} through "
                  f"{', '.join(r['critical_path']['sources']) or '-'}; array's {_path({'critical_path': r.get('array_critical_path')})}")
        if r.get("dsp_sources"):
            print(f"{r['kind']} {r['array']} on {r['target']}: DSPs by source "
                  f"{', '.join(f'{src} {n}' for src, n in r['dsp_sources'].items())}")
        if r.get("pnr_skipped"):
            print(f"no Fmax for {r['kind']} {r['array']} on {r['target']}: it {r['pnr_skipped']}")
        blocks = ", ".join(f"{name} {m['blocks']}" for name, m in r.get("memories", {}).items() if "blocks" in m)
        flat = [name for name, m in r.get("memories", {}).items() if m["kind"] == "logic"]
        if blocks or flat:
            print(f"{r['kind']} {r['array']} on {r['target']}: block RAM cells per buffer: {blocks or 'none'}"
                  + (f"; flattened into logic: {', '.join(flat)}" if flat else ""))
    record["load_average_after"] = os.getloadavg()
    Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
