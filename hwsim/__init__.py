"""hwsim: what a network costs on a MAC / adder / XNOR / shift PE array, and what the hardware is.

The pieces: :mod:`hwsim.accelerator` (the one accelerator description), :mod:`hwsim.api`
(accelerators and workloads as every command resolves them), :mod:`hwsim.extract` (network ->
Workload), :mod:`hwsim.mapping` and :mod:`hwsim.dataflow` (cycles and memory traffic),
:mod:`hwsim.simulate` (energy and area via ``cost_models``), :mod:`hwsim.rtl_plan` and
:mod:`hwsim.rtl_timing` (the generated top's geometry, capacity and exact cycles),
:mod:`hwsim.report` (table, JSON, CSV), :mod:`hwsim.recognise` (third-party layers:
:func:`register_layer`). The ``hwsim`` command is the package ``hwsim_cli``.
"""

__version__ = "0.1.0"

__all__ = ["register_layer", "unregister_layer"]


def __getattr__(name: str) -> object:
    """``hwsim.register_layer`` / ``unregister_layer`` (:mod:`hwsim.recognise`), imported on first
    use so that ``import hwsim`` stays free of torch."""
    if name in __all__:
        from hwsim import recognise

        return getattr(recognise, name)
    raise AttributeError(f"module 'hwsim' has no attribute {name!r}")
