import pytest
import pywt
import torch

from weightspace_wno.model import WaveletConv2d, coarsest_band_shape


@pytest.mark.parametrize(("wavelet", "level", "size"), [("db4", 2, 32), ("haar", 3, 16), ("db2", 1, 20)])
def test_band_shape_matches_pywavelets(wavelet, level, size):
    length = size
    for _ in range(level):
        length = pywt.dwt_coeff_len(length, pywt.Wavelet(wavelet).dec_len, "symmetric")
    assert coarsest_band_shape((size, size), wavelet, level, "symmetric") == (length, length)


def test_identity_weights_reconstruct_the_input_at_one_level():
    """With one level every band is kept, so unit diagonal weights must give perfect reconstruction."""
    conv = WaveletConv2d(2, 2, coarsest_band_shape((16, 16), "db4", 1, "symmetric"), "db4", 1, "symmetric")
    with torch.no_grad():
        for p in conv.parameters():
            p.zero_()
            p[0, 0] = 1
            p[1, 1] = 1
    x = torch.randn(3, 2, 16, 16, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(conv(x), x, atol=1e-5, rtol=1e-5)


def test_finer_levels_are_dropped():
    """At two levels the finest details are zeroed: the output of a fine checkerboard loses it."""
    conv = WaveletConv2d(1, 1, coarsest_band_shape((16, 16), "haar", 2, "symmetric"), "haar", 2, "symmetric")
    with torch.no_grad():
        for p in conv.parameters():
            p.fill_(1.0)
    checker = (torch.arange(16).view(-1, 1) + torch.arange(16)).remainder(2).float().view(1, 1, 16, 16)
    with torch.no_grad():
        y = conv(checker - checker.mean())
    assert float(y.abs().max()) < 1e-5
