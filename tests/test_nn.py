"""The generic blocks of :mod:`weightspace.nn`: the DiT's zero init, the diffusion loss and DDIM against
exact predictors, and the checks of the shared options."""

from types import SimpleNamespace

import pytest
import torch

from weightspace.nn.diffusion import PREDICTIONS, NoiseSchedule, ddim_sample, diffusion_loss
from weightspace.nn.dit import DiT, require_dit_shape
from weightspace.nn.latent_model import GuidanceConfig


def test_dit_starts_at_zero():
    net = DiT(tokens=5, latent_dim=3, condition_dim=4, hidden=16, depth=2, heads=2)
    x, cond = torch.randn(2, 5, 3), torch.randn(2, 4)
    assert net(x, torch.tensor([3, 500]), cond).abs().max() == 0  # adaLN-Zero and zero output layer


@pytest.mark.parametrize(("change", "message"), [({"hidden": 10}, "divisible"), ({"depth": 0}, "depth")])
def test_dit_shape_must_be_positive_and_split_between_heads(change, message):
    require_dit_shape(SimpleNamespace(hidden=16, depth=2, heads=4))
    with pytest.raises(ValueError, match=message):
        require_dit_shape(SimpleNamespace(**{"hidden": 16, "depth": 2, "heads": 4, **change}))


@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_ddim_recovers_a_known_distribution(prediction):
    """With the exact predictor of a point mass at mu (noise, clean sample or velocity), DDIM lands
    on mu from any noise."""
    schedule = NoiseSchedule("cosine", 1000)
    mu = torch.tensor([1.5, -2.0])

    def exact(x, t):
        a = schedule.alpha_bar[t].view(-1, 1)
        eps = (x - a.sqrt() * mu) / (1 - a).sqrt()
        return {"epsilon": eps, "x0": mu.expand_as(x), "v": a.sqrt() * eps - (1 - a).sqrt() * mu}[prediction]

    out = ddim_sample(exact, (4, 2), schedule, 20, torch.Generator().manual_seed(0), prediction=prediction)
    torch.testing.assert_close(out, mu.expand(4, 2), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_diffusion_loss_is_zero_for_the_exact_predictor(prediction):
    schedule = NoiseSchedule("linear", 100)
    x0 = torch.randn(8, 3, generator=torch.Generator().manual_seed(1))

    def exact(x, t):
        a = schedule.alpha_bar[t].view(-1, 1)
        eps = (x - a.sqrt() * x0) / (1 - a).sqrt()
        return {"epsilon": eps, "x0": x0, "v": a.sqrt() * eps - (1 - a).sqrt() * x0}[prediction]

    loss = diffusion_loss(exact, x0, schedule, torch.Generator().manual_seed(2), prediction)
    assert float(loss) < 1e-8
    assert float(diffusion_loss(lambda x, t: torch.zeros_like(x), x0, schedule, torch.Generator(), prediction)) > 0.1


def test_ddim_clip_bounds_the_x0_estimates():
    schedule = NoiseSchedule("linear", 200)
    mu = torch.tensor([3.0, -3.0])

    def exact(x, t):
        a = schedule.alpha_bar[t].view(-1, 1)
        return (x - a.sqrt() * mu) / (1 - a).sqrt()

    out = ddim_sample(exact, (2, 2), schedule, 10, torch.Generator().manual_seed(0), clip=1.0)
    assert out.abs().max() <= 1.0 + 1e-5


def test_mean_head_must_not_be_negative():
    with pytest.raises(ValueError, match="mean_head"):
        GuidanceConfig(mean_head=-1)
