"""hwsim: what a network costs on a MAC / adder / XNOR / shift PE array, and what the hardware is.

The pieces: :mod:`hwsim.accelerator` (the one accelerator description), :mod:`hwsim.extract`
(network -> Workload), :mod:`hwsim.mapping` and :mod:`hwsim.dataflow` (cycles and memory
traffic), :mod:`hwsim.simulate` (energy and area via ``cost_models``), :mod:`hwsim.report`
(table, JSON, CSV) and :mod:`hwsim.cli` (the ``hwsim`` command).
"""

__version__ = "0.1.0"
