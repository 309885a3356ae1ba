"""Layer arithmetic: GEMM view, MAC and op counts, BNN op counting."""

import pytest

from hwsim.workload import Layer, Workload


def conv(**kw):
    base = dict(name="c", op="conv", in_ch=16, in_h=8, in_w=8, out_ch=32, out_h=8, out_w=8,
                kernel=(3, 3), padding=(1, 1), pe="mac")
    return Layer(**{**base, **kw})


def test_conv_gemm_and_macs():
    layer = conv()
    assert layer.gemm == (1, 64, 144, 32)  # M = 8*8, K = 16*3*3, N = 32
    assert layer.macs == 64 * 144 * 32
    assert layer.weight_elems == 32 * 16 * 9


def test_depthwise_gemm():
    layer = conv(out_ch=16, groups=16)
    assert layer.gemm == (16, 64, 9, 1)
    assert layer.macs == 16 * 64 * 9
    assert layer.shape.endswith("dw")


def test_linear_batch_rows():
    layer = Layer(name="fc", op="linear", in_ch=512, in_h=1, in_w=1, out_ch=10, out_h=1, out_w=1, batch=4, pe="mac")
    assert layer.gemm == (1, 4, 512, 10)


def test_vector_layer_is_not_a_gemm():
    pool = Layer(name="p", op="maxpool", in_ch=8, in_h=4, in_w=4, out_ch=8, out_h=2, out_w=2, kernel=(2, 2))
    assert pool.macs == 0 and pool.vector_ops == 8 * 2 * 2 * 4
    with pytest.raises(ValueError, match=r"^layer 'p' \(maxpool\) is vector work, not a GEMM$"):
        pool.gemm


def test_binary_op_counts():
    wl = Workload("bnn", (1, 3, 8, 8), (conv(name="first"), conv(name="b", pe="xnor", act_bits=1, weight_bits=1)))
    macs = 64 * 144 * 32
    counts = wl.binary_op_counts()
    assert counts == {"bops": macs, "flops": macs, "ops": macs / 64 + macs}
    assert wl.macs_by_pe() == {"mac": macs, "xnor": macs}
