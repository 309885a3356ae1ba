"""FPGA power of a synthesized design: resources x activity x energy per event, per family.

The coefficients are in ``data/power/fpga.yaml``, each cited or marked as an assumption. For a
design with ``LUT`` LUTs, ``carry`` carry cells, ``FF`` flip-flops, ``BRAM`` block RAMs and
``DSP`` multipliers at clock ``f``::

    dynamic = f * ( a_logic * (LUT * E_net + carry * E_carry)        # outputs that toggle
                  + FF * (E_clock + a_ff * E_net)                     # clock pin every cycle, Q net
                  + BRAM * r_mem * E_bram + DSP * r_dsp * E_dsp )     # accesses and multiplies
    E_net = C_net V^2 / 2,  E_carry = C_carry V^2 / 2,  E_clock = C_clock V^2
    static  = the device's quiescent power (the whole device is powered, whatever the design uses)

``a_logic`` and ``a_ff`` are toggles per output per cycle, ``r_mem`` and ``r_dsp`` the share of
cycles a block RAM or multiplier works (:class:`FpgaActivity`): measured by co-simulation
(``hwsim cosim --activity``) or, without one, the XPE default toggle rate of 12.5 % for all four.
Every block RAM is charged ``r_mem`` accesses per cycle: an upper bound for deep buffers split
over many block RAMs, of which only the addressed one works. Glitches (zero-delay simulation does
not see them), I/O and the PLL are not modelled.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cost_models.tech import read_table

__all__ = ["FAMILIES", "FpgaActivity", "FpgaPower", "default_activity", "fpga_power", "load_power_table"]

DATA_DIR = Path(__file__).resolve().parent / "data" / "power"
#: Coefficients each family must give (the table's keys).
_KEYS = ("vdd_v", "lut_net_ff", "carry_ff", "ff_clock_ff", "bram_access_pj", "dsp_op_pj", "static_mw")
FAMILIES = ("ice40", "ecp5", "xc7")


@functools.lru_cache(maxsize=4)
def load_power_table(name: str = "fpga") -> dict[str, Any]:
    """The validated table: ``{"default_toggle_rate": float, family: {key: value, "device": str}}``.
    Raises ValueError naming a missing family, coefficient or source."""
    data, label, _ = read_table(name, "fpga power", DATA_DIR)

    def number(node: Any, where: str) -> float:
        if not isinstance(node, dict) or not isinstance(node.get("source"), str):
            raise ValueError(f"fpga power table {label!r}: `{where}` needs a value and a source")
        value = node.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"fpga power table {label!r}: `{where}.value` must be a positive number")
        return float(value)

    out: dict[str, Any] = {"default_toggle_rate": number(data.get("default_toggle_rate"), "default_toggle_rate")}
    for family in FAMILIES:
        node = data.get("families", {}).get(family)
        if not isinstance(node, dict):
            raise ValueError(f"fpga power table {label!r}: no family `{family}`")
        out[family] = {"device": str(node.get("device", family)),
                       **{key: number(node.get(key), f"families.{family}.{key}") for key in _KEYS}}
    return out


@dataclass(frozen=True)
class FpgaActivity:
    """Toggles per LUT/carry output and per flip-flop output per cycle; share of cycles a block RAM
    and a multiplier work. ``source`` says where they come from."""

    logic: float
    ff: float
    memory: float
    dsp: float
    source: str


def default_activity() -> FpgaActivity:
    """The XPE default toggle rate for everything (no co-simulation)."""
    rate = load_power_table()["default_toggle_rate"]
    return FpgaActivity(rate, rate, rate, rate, "XPE default toggle rate 12.5 %")


@dataclass(frozen=True)
class FpgaPower:
    """Power in mW at ``freq_mhz``: ``dynamic_mw`` per resource class, ``static_mw``."""

    target: str
    device: str
    freq_mhz: float
    dynamic_mw: dict[str, float]
    static_mw: float
    activity: FpgaActivity

    @property
    def total_dynamic_mw(self) -> float:
        return sum(self.dynamic_mw.values())

    @property
    def total_mw(self) -> float:
        return self.total_dynamic_mw + self.static_mw

    def energy_uj(self, cycles: int) -> float:
        """Energy of ``cycles`` clock cycles (e.g. one inference) in uJ, static included."""
        return self.total_mw * cycles / self.freq_mhz * 1e-3

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "device": self.device, "freq_mhz": self.freq_mhz,
                "dynamic_mw": self.dynamic_mw, "total_dynamic_mw": self.total_dynamic_mw,
                "static_mw": self.static_mw, "total_mw": self.total_mw, "activity": vars(self.activity)}


def fpga_power(resources: dict[str, Any], target: str, freq_mhz: float,
               activity: FpgaActivity | None = None) -> FpgaPower:
    """Power of a design with ``resources`` (``lut``, ``ff``, ``carry``, ``bram``, ``dsp`` counts,
    as :func:`rtl.synth.synthesize` or :func:`cost_models.fpga.accelerator_resources` give them)
    on ``target`` at ``freq_mhz`` (see the module docstring). Raises ValueError on an unknown
    target or a non-positive frequency."""
    if target not in FAMILIES:
        raise ValueError(f"`target` must be one of {', '.join(FAMILIES)}, not {target!r}")
    if not freq_mhz or freq_mhz <= 0:
        raise ValueError(f"the clock must be a positive frequency in MHz, not {freq_mhz!r}")
    c = load_power_table()[target]
    a = activity or default_activity()
    v2 = c["vdd_v"] ** 2
    net_pj, carry_pj = c["lut_net_ff"] * v2 / 2 * 1e-3, c["carry_ff"] * v2 / 2 * 1e-3
    clock_pj = c["ff_clock_ff"] * v2 * 1e-3
    n = {key: int(resources.get(key) or 0) for key in ("lut", "carry", "ff", "bram", "dsp")}
    per_cycle_pj = {"lut": n["lut"] * a.logic * net_pj, "carry": n["carry"] * a.logic * carry_pj,
                    "ff": n["ff"] * (clock_pj + a.ff * net_pj),
                    "bram": n["bram"] * a.memory * c["bram_access_pj"],
                    "dsp": n["dsp"] * a.dsp * c["dsp_op_pj"]}
    dynamic = {key: pj * freq_mhz * 1e-3 for key, pj in per_cycle_pj.items()}  # pJ x MHz = uW
    return FpgaPower(target=target, device=c["device"], freq_mhz=float(freq_mhz), dynamic_mw=dynamic,
                     static_mw=c["static_mw"], activity=a)
