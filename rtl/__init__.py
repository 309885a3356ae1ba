"""Amaranth generator of the accelerators that hwsim costs (PEs, PE array, buffers, controller).

Reads only :mod:`hwsim.accelerator`. Built under issue #3; this package is installed now so the
layout in DESIGN.md holds from the start.
"""
