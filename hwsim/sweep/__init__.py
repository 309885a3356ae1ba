"""Design-space sweeps (``hwsim sweep``): a network costed over PE kinds, widths, array shapes,
dataflows, buffer sizes, DRAM generations and clocks, with Pareto fronts.

:mod:`~hwsim.sweep.space` (axes, points, each point's accelerator), :mod:`~hwsim.sweep.run`
(strategies, costing through the cache and a :mod:`hwsim.parallel` backend, feasibility and
fronts), :mod:`~hwsim.sweep.cache` (results on disk), :mod:`~hwsim.sweep.pareto` (the front),
:mod:`~hwsim.sweep.output` (plots and files).
"""
