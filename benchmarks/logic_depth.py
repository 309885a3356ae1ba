"""Every slow register-to-register path of a synthesized ECP5 netlist at once, grouped by source line.

nextpnr reports one critical path per clock, after minutes of placement; cutting paths one at a
time that way takes a place-and-route run per path. This estimate walks Yosys's ``synth_ecp5``
netlist (``netlist.json``, which ``hwsim rtl synth --target ecp5 -o DIR`` leaves in
``DIR/<module>_ecp5/``) in seconds and gives every flip-flop, block RAM and DSP input its
arrival time with a fixed delay per cell and per net, then groups the endpoints over a
threshold by (endpoint's source line, its port, the path's start's source line).

The delays are assumptions read off nextpnr-ecp5 0.11's critical-path reports on the network
accelerator (LFE5U-85F, speed 6): flip-flop clock-to-out 0.52 ns; LUT4 0.25 ns; the PFUMX and
L6MUX21 that join LUTs into LUT5-7 0.22 ns with no routing between them and their LUTs; CCU2C
0.45 ns into a carry chain, 0.06 ns a carry step; a routed net 0.85 ns (the reports show 0.04
to 2.3 ns, most 0.6-1.2); block RAM clock-to-out without its output register 4.8 ns, DSP output
register 1.0 ns; setup 0.1 ns at D, 0.35 at CE and LSR. Placement decides the real routing, so
the figure per path is rough; what it is for is the list. Measured: on the 4x4 adder network
accelerator (``--sram-kib 2``), nextpnr's routed critical path was 9.85 ns where this estimate
put that endpoint at 9.56 and its worst at 10.32.

Run: ``.venv/bin/python benchmarks/logic_depth.py [DIR/adder_network_ecp5/netlist.json]
[--threshold 8.0] [--groups 40] [--trace N]`` (``--trace``: the first N groups' worst paths net
by net, each net's estimated arrival and its driver's source line); without a netlist it
synthesizes the 4x4 adder network accelerator with 2 KiB buffers first (``hwsim rtl synth ... --network --sram-kib 2``, about a
minute); with ``nextpnr.log`` beside the netlist its achieved Fmax is printed too.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

CLK_TO_Q, LUT, MUX, ROUTE, CARRY_IN, CARRY_STEP, CARRY_SUM = 0.52, 0.25, 0.22, 0.85, 0.45, 0.06, 0.2
BRAM_OUT, BRAM_OUTREG, DSP_OUT = 4.8, 1.5, 1.0
SETUP = {"DI": 0.1, "CE": 0.35, "LSR": 0.35}


class Netlist:
    """The top module of a ``synth_ecp5`` netlist: each net bit's driver, and arrival times."""

    def __init__(self, path: Path) -> None:
        data = json.loads(path.read_text())
        self.top = next(mod for mod in data["modules"].values() if mod.get("attributes", {}).get("top"))
        self.cells: dict[str, Any] = self.top["cells"]
        self.driver: dict[int, tuple[str, str]] = {}
        for name, cell in self.cells.items():
            for port, bits in cell["connections"].items():
                if cell["port_directions"][port] == "output":
                    self.driver.update({b: (name, port) for b in bits if isinstance(b, int)})
        self.names: dict[int, str] = {}
        for name, net in self.top["netnames"].items():
            for b in net["bits"]:
                if isinstance(b, int) and (b not in self.names or self.names[b].startswith("$")):
                    self.names[b] = name
        self._arrival: dict[int, tuple[float, int | None]] = {}

    def source(self, cell: str | None) -> str:
        """The project source line a cell came from (else the first of its sources)."""
        if cell is None:
            return "-"
        src = self.cells[cell]["attributes"].get("src", "")
        found = re.findall(r"(rtl/[a-z_0-9]+\.py:\d+)", src)
        return found[0] if found else src.split("|")[0][-40:]

    def arrival(self, bit: int) -> tuple[float, int | None]:
        """When ``bit`` settles after the clock edge, and the input bit it waits for."""
        stack = [bit]
        while stack:  # depth first without recursion: the carry chains are long
            b = stack[-1]
            if b in self._arrival:
                stack.pop()
                continue
            inputs = self._inputs(b)
            pending = [i for i, _ in inputs if i not in self._arrival]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            self._arrival[b] = self._settle(b, inputs)
        return self._arrival[bit]

    def _inputs(self, bit: int) -> list[tuple[int, float]]:
        """The input bits of ``bit``'s driver that a path goes through, with each one's delay."""
        if bit not in self.driver:
            return []
        name, out = self.driver[bit]
        cell = self.cells[name]
        kind, found = cell["type"], []
        for port, bits in cell["connections"].items():
            if cell["port_directions"][port] != "input" or not bits or not isinstance(bits[0], int):
                continue
            if kind == "LUT4" and port in "ABCD":
                found.append((bits[0], ROUTE + LUT))
            elif kind in ("PFUMX", "L6MUX21"):
                found.append((bits[0], MUX + (0 if port in ("ALUT", "BLUT", "D0", "D1") else ROUTE)))
            elif kind == "CCU2C":
                if port == "CIN":
                    found.append((bits[0], CARRY_STEP if out == "COUT" else CARRY_SUM))
                elif not (out == "S0" and port.endswith("1")):
                    found.append((bits[0], ROUTE + CARRY_IN))
        return found

    def _settle(self, bit: int, inputs: list[tuple[int, float]]) -> tuple[float, int | None]:
        kind = self.cells[self.driver[bit][0]]["type"] if bit in self.driver else None
        if kind == "TRELLIS_FF":
            return CLK_TO_Q, None
        if kind == "DP16KD":
            params = self.cells[self.driver[bit][0]]["parameters"]
            return (BRAM_OUT if params.get("REGMODE_B", "NOREG") == "NOREG" else BRAM_OUTREG), None
        if kind == "MULT18X18D":
            return DSP_OUT, None
        return max(((self._arrival[i][0] + delay, i) for i, delay in inputs), default=(0.0, None))

    def endpoints(self) -> list[tuple[float, str, str, int]]:
        """Every register, block RAM and DSP input bit: (arrival with setup, cell, port, bit)."""
        found = []
        for name, cell in self.cells.items():
            for port, bits in cell["connections"].items():
                if cell["port_directions"][port] != "input":
                    continue
                if cell["type"] == "TRELLIS_FF" and port in SETUP:
                    extra = ROUTE + SETUP[port]
                elif cell["type"] in ("DP16KD", "MULT18X18D") and not port.startswith("CLK"):
                    extra = ROUTE + 0.3
                else:
                    continue
                found += [(self.arrival(b)[0] + extra, name, port, b) for b in bits if isinstance(b, int)]
        return sorted(found, reverse=True)

    def path(self, bit: int) -> list[int]:
        """The bits of ``bit``'s slowest path, from its start."""
        bits = [bit]
        while (before := self.arrival(bits[-1])[1]) is not None:
            bits.append(before)
        return bits[::-1]


def trace(net: Netlist, bit: int) -> list[str]:
    """The lines of ``bit``'s slowest path: each net on it, its arrival and its driver's source."""
    lines = []
    for b in net.path(bit):
        cell = net.driver.get(b, (None,))[0]
        kind = net.cells[cell]["type"] if cell else "-"
        lines.append(f"      {net.arrival(b)[0]:5.2f} {kind:10s} {net.source(cell):28s} {net.names.get(b, b)}")
    return lines


def report(net: Netlist, threshold: float, groups: int, traced: int = 0) -> list[str]:
    """The lines of the report: a summary, then each group's worst path (the first ``traced``
    groups' paths net by net)."""
    ends = net.endpoints()
    slow = [e for e in ends if e[0] >= threshold]
    grouped: dict[tuple[str, str, str], list[Any]] = {}
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    for delay, cell, port, bit in slow:
        bits = net.path(bit)
        start = net.driver.get(bits[0], (None,))[0]
        key = (net.source(cell), port, net.source(start))
        counts[key] += 1
        grouped.setdefault(key, [delay, net.names.get(bits[0], bits[0]), net.names.get(bit, bit), len(bits), bit])
    worst = ends[0][0] if ends else 0.0
    lines = [f"{len(slow)} endpoint bits at {threshold:.2f} ns or more, in {len(grouped)} groups; "
             f"worst {worst:.2f} ns (~{1000 / worst:.0f} MHz)" if worst else "no clocked endpoint"]
    for i, (key, (delay, start, end, nets, bit)) in enumerate(list(grouped.items())[:groups]):
        lines.append(f"{delay:6.2f} ns x{counts[key]:<4d} {key[0]} .{key[1]} <- {key[2]}  ({start} -> {end}, {nets} nets)")
        if i < traced:
            lines += trace(net, bit)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("netlist", type=Path, nargs="?",
                        help="a synth_ecp5 netlist.json (default: synthesize the 4x4 adder network accelerator)")
    parser.add_argument("--threshold", type=float, default=8.0, help="list endpoints this slow or slower (ns)")
    parser.add_argument("--groups", type=int, default=40, help="groups to print")
    parser.add_argument("--trace", type=int, default=0, help="print the worst path of this many groups net by net")
    args = parser.parse_args(argv)
    if args.netlist is None:
        with tempfile.TemporaryDirectory() as out:
            hwsim = Path(sys.executable).with_name("hwsim")
            subprocess.run([str(hwsim), "rtl", "synth", "--pe", "adder", "--array", "4x4", "--target", "ecp5",
                            "--network", "--sram-kib", "2", "-o", out], check=True, stdout=subprocess.DEVNULL)
            return main([str(Path(out) / "adder_network_ecp5" / "netlist.json"), "--threshold",
                         str(args.threshold), "--groups", str(args.groups), "--trace", str(args.trace)])
    if not args.netlist.is_file():
        print(f"logic_depth: no netlist at {args.netlist}; run `hwsim rtl synth --target ecp5 -o DIR` first",
              file=sys.stderr)
        return 2
    print("\n".join(report(Netlist(args.netlist), args.threshold, args.groups, args.trace)))
    log = args.netlist.parent / "nextpnr.log"
    if log.is_file():
        achieved = re.findall(r"Max frequency for clock [^:]*: ([\d.]+) MHz", log.read_text())
        if achieved:
            print(f"nextpnr beside it: {achieved[-1]} MHz ({1000 / float(achieved[-1]):.2f} ns)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
