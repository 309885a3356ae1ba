"""cocotb + Verilator co-simulation of the generated RTL against models/ and hwsim's cycle model.

Built under issue #4; this package is installed now so the layout in DESIGN.md holds from the start.
"""
