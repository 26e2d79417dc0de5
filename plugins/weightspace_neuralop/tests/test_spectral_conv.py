"""The vmap-friendly SpectralConv and 1x1 convolutions are drop-ins for neuraloperator's: same names and outputs."""

import contextlib
import io

import pytest
import torch
from neuralop.models import FNO, UNO

from weightspace_neuralop.fno import FNOAdapter, FNOConfig
from weightspace_neuralop.pointwise import PointwiseConv1d, as_matmuls
from weightspace_neuralop.uno import UNOAdapter, UNOConfig


def _load(stock: torch.nn.Module, ours: torch.nn.Module) -> torch.nn.Module:
    state = {k: v for k, v in ours.state_dict().items() if k != "_metadata"}
    missing, unexpected = stock.load_state_dict(state, strict=False)
    assert not unexpected and all(k == "_metadata" for k in missing)
    return stock


@pytest.mark.parametrize(("modes", "grid"), [((8, 8), (32, 32)), ((5, 6), (16, 12)), ((12, 12), (8, 8))])
def test_fno_matches_stock_neuraloperator(modes, grid):
    config = FNOConfig(hidden_channels=6, n_modes=modes, n_layers=2, in_channels=2, out_channels=1)
    ours = FNOAdapter(config).build(seed=3)
    stock = _load(FNO(n_modes=modes, in_channels=2, out_channels=1, hidden_channels=6, n_layers=2), ours)
    x = torch.randn(3, 2, *grid, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ours(x), stock(x), rtol=1e-5, atol=1e-6)


def test_uno_matches_stock_neuraloperator_with_rescaling_and_skips():
    config = UNOConfig()
    ours = UNOAdapter(config).build(seed=1)
    with contextlib.redirect_stdout(io.StringIO()):
        stock = UNO(
            1,
            1,
            hidden_channels=config.hidden_channels,
            lifting_channels=config.lifting_channels,
            projection_channels=config.projection_channels,
            n_layers=len(config.layer_channels),
            uno_out_channels=list(config.layer_channels),
            uno_n_modes=[list(m) for m in config.layer_modes],
            uno_scalings=[list(s) for s in config.layer_scalings],
            channel_mlp_skip="linear",
        )
    _load(stock, ours)
    x = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ours(x), stock(x), rtol=1e-5, atol=1e-6)


def test_fno_weights_are_stored_in_out_kx_ky():
    """neuraloperator stores spectral weights (in, out, kx, ky); the layout relies on it."""
    spec = FNOAdapter(FNOConfig(hidden_channels=4, n_modes=(6, 6), n_layers=1)).spec
    assert spec.param("fno_blocks.convs.0.weight.tensor").shape == (4, 4, 6, 4)
    group = spec.group("block0.spectral")
    assert group.n_nodes == 4 and group.feat_dim == 4 * 6 * 4 * 2 + 1 + 4


def test_one_by_one_convolutions_run_as_matmuls_with_stock_names_and_outputs():
    fno = FNOAdapter(FNOConfig(hidden_channels=6, n_modes=(4, 4), n_layers=2)).build(seed=0)
    pointwise = [name for name, m in fno.named_modules() if isinstance(m, PointwiseConv1d)]
    assert pointwise and not [m for m in fno.modules() if type(m) is torch.nn.Conv1d]
    conv = dict(fno.named_modules())[pointwise[0]]
    x = torch.randn(3, conv.in_channels, 10, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(conv(x), torch.nn.functional.conv1d(x, conv.weight, conv.bias), rtol=1e-5, atol=1e-6)
    strided = as_matmuls(torch.nn.Conv1d(2, 2, kernel_size=1, stride=2))  # not a plain 1x1: left alone
    assert type(strided) is torch.nn.Conv1d
