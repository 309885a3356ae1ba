"""Parse the one-line layer descriptions of ``hwsim cosim --layer``.

Grammar: an operation, then ``key=value`` pairs of positive integers, in any order::

    conv k=3 cin=16 cout=16 h=16 w=16 stride=1 pad=1 [groups=16]
    linear cin=64 cout=10

``k`` is the (square) kernel, ``h``/``w`` the input size (``w`` defaults to ``h``), ``groups``
splits the channels (``groups=cin=cout`` is depthwise); ``stride`` and ``groups`` default to 1,
``pad`` to 0.
"""

from __future__ import annotations

from hwsim.errors import HwsimError
from sim.layers import LayerSpec

__all__ = ["parse_layer"]

#: Keys each operation takes, mapped to :class:`LayerSpec` fields.
_KEYS = {
    "conv": {"k": "kernel", "cin": "cin", "cout": "cout", "h": "h", "w": "w", "stride": "stride",
             "pad": "pad", "groups": "groups"},
    "linear": {"cin": "cin", "cout": "cout"},
}
_EXAMPLE = '"conv k=3 cin=16 cout=16 h=16 w=16 stride=1 pad=1" or "linear cin=64 cout=10"'


def parse_layer(text: str) -> LayerSpec:
    """The :class:`LayerSpec` that ``text`` describes; :class:`HwsimError` names what is wrong
    (unknown operation or key, a key twice, a value that is not a positive integer -- ``pad``
    may be 0 -- a missing ``cin``/``cout``/``k``/``h``, or a shape :class:`LayerSpec` rejects)."""
    words = text.split()
    if not words or words[0] not in _KEYS:
        head = words[0] if words else ""
        raise HwsimError(f"layer {text!r}: unknown operation {head!r}; write e.g. {_EXAMPLE}")
    op, keys = words[0], _KEYS[words[0]]
    fields: dict[str, int] = {}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep or key not in keys:
            raise HwsimError(f"layer {text!r}: {word!r} is not one of {op}'s "
                             f"{', '.join(k + '=N' for k in keys)}")
        if keys[key] in fields:
            raise HwsimError(f"layer {text!r}: {key} is given twice")
        if not value.isdigit() or (int(value) == 0 and key != "pad"):
            noun = "a non-negative" if key == "pad" else "a positive"
            raise HwsimError(f"layer {text!r}: {key} must be {noun} integer, not {value!r}")
        fields[keys[key]] = int(value)
    missing = [k for k in ("cin", "cout") + (("k", "h") if op == "conv" else ()) if keys[k] not in fields]
    if missing:
        raise HwsimError(f"layer {text!r}: missing {', '.join(k + '=N' for k in missing)}")
    if op == "conv":
        fields.setdefault("w", fields["h"])
    try:
        return LayerSpec(op=op, **fields)
    except ValueError as exc:
        raise HwsimError(f"layer {text!r}: {exc}") from None
