"""PyTorch side of hwsim: multiplication-free layers, networks, integer quantization and the integer
reference forward that the generated RTL must match bit for bit."""

from models.layers import PE_LAYERS, make_like, pe_kind_of

__all__ = ["PE_LAYERS", "make_like", "pe_kind_of"]
