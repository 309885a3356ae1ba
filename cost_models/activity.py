"""Energy per output toggle of the technology table's gates, consistent with their energy per op.

A table's ``energy_pj`` of a gate is the energy of one operation on typical data, the way the
analytic models charge it (every op switches alike). Gate-level simulation counts output toggles
instead, so each gate needs an energy per toggle. The rule, written once here: a gate fed
independent uniform random inputs every cycle costs exactly its table energy per op, i.e.

    energy per output toggle = energy_pj / (expected output toggles per op on random inputs)

where an output that is 1 with probability ``p`` toggles with probability ``2 p (1 - p)`` between
two independent random input vectors (computed from the gate's truth table, :func:`random_toggles`).
A full adder's sum and carry are each 1 half the time: 1.0 toggles per op; an XOR, a MUX and an
inverter 0.5; a two-input AND 0.375. A flip-flop (``gates.dff``, one bit per clock) splits into a
clock share charged every cycle (``gate_level.dff_clock.fraction``) and the rest per output toggle
at 0.5 toggles per cycle. So the gate-level energy of random data equals the analytic energy, and
real data's ratio to it is its activity factor.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from cost_models.tech import Technology

__all__ = ["GATE_OUTPUTS", "ToggleEnergy", "random_toggles", "toggle_energy"]

Boolean = Callable[..., int]

#: Each costed gate's outputs as boolean functions of its inputs (``dff``: its data bit).
GATE_OUTPUTS: dict[str, tuple[Boolean, ...]] = {
    "full_adder": (lambda a, b, c: a ^ b ^ c, lambda a, b, c: (a & b) | (a & c) | (b & c)),
    "xor2": (lambda a, b: a ^ b,),
    "mux2": (lambda s, a, b: b if s else a,),
    "and2": (lambda a, b: a & b,),
    "inv": (lambda a: 1 - a,),
    "dff": (lambda d: d,),
}


def random_toggles(outputs: tuple[Boolean, ...]) -> float:
    """Expected output toggles between two independent uniform random input vectors."""
    total = 0.0
    for fn in outputs:
        arity = fn.__code__.co_argcount
        ones = sum(fn(*bits) for bits in itertools.product((0, 1), repeat=arity))
        p = ones / 2 ** arity
        total += 2 * p * (1 - p)
    return total


@dataclass(frozen=True)
class ToggleEnergy:
    """Energies of one technology for gate-level counting: ``per_toggle_pj`` per output toggle of
    each gate of :data:`GATE_OUTPUTS` (a full adder's sum and carry each count), ``dff_clock_pj``
    per flip-flop per clock cycle."""

    per_toggle_pj: dict[str, float]
    dff_clock_pj: float


def toggle_energy(tech: Technology) -> ToggleEnergy:
    """The :class:`ToggleEnergy` of ``tech`` (see the module docstring). Raises ValueError when
    the table has no ``gate_level`` group (its ``and2``, ``inv`` and ``dff_clock``)."""
    if tech.dff_clock_fraction is None:
        raise ValueError(f"tech table {tech.name!r} has no `gate_level` group (and2, inv, dff_clock) "
                         f"that gate-level energy needs; see horowitz45.yaml")
    per_toggle = {}
    for name, outputs in GATE_OUTPUTS.items():
        energy = tech.gate(name).energy_pj
        if name == "dff":
            energy *= 1 - tech.dff_clock_fraction
        per_toggle[name] = energy / random_toggles(outputs)
    return ToggleEnergy(per_toggle, tech.gate("dff").energy_pj * tech.dff_clock_fraction)
