"""cocotb + Verilator co-simulation of the generated RTL against models/ and hwsim's cycle model.

:mod:`sim.build` compiles the top of an accelerator inside the HDL harness of ``sim/hdl/`` (cached),
:mod:`sim.bench` is the cocotb bench that hands the harness its job,
:mod:`sim.cosim` runs integer layers through it and checks them bit- and cycle-exactly,
:mod:`sim.layers` and :mod:`sim.spec` make test layers, :mod:`sim.network` runs a trained network.
"""
