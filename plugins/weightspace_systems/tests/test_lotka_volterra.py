import pytest
import torch

from weightspace.errors import ConfigError
from weightspace_systems.lotka_volterra import LotkaVolterra


@pytest.fixture(scope="module")
def lv():
    return LotkaVolterra("quick")


def test_profiles_are_data(lv):
    paper = LotkaVolterra("paper")
    assert len(paper.environments()) == 121 and paper.settings.n_seen == 24
    assert len(lv.environments()) == 100 and lv.settings.n_seen == 48
    env = paper.environments()
    assert env.min() == 0.5 and env.max() == 1.0
    with pytest.raises(ConfigError, match="unknown profile 'huge'"):
        LotkaVolterra("huge")
    with pytest.raises(ConfigError, match="100 seen and 1 for validation leave -1 for test"):
        LotkaVolterra("quick", {"n_seen": 100})


def test_first_integral_is_conserved(lv):
    index = torch.tensor([0, 45, 99])  # corners and centre of the (b, d) grid
    traj = lv.simulate(index, 4, seed=0)
    v = lv.first_integral(lv.environments()[index], traj)
    drift = (v - v[..., :1]).abs().max()
    assert float(drift) < 1e-5  # float32 storage of states dominates the 1e-9 solver tolerance
    assert torch.isfinite(traj).all() and (traj > 0).all()


def test_initial_conditions_are_frame_zero_and_in_the_box(lv):
    traj = lv.simulate(torch.tensor([3]), 5, seed=1)
    assert ((traj[:, :, 0] >= 1) & (traj[:, :, 0] <= 3)).all()
    # re-simulating from the stored frame 0 gives the stored trajectory
    again = lv.solve(lv.environments()[[3]], traj[:, :, 0].double())
    torch.testing.assert_close(again, traj, atol=1e-6, rtol=1e-6)


def test_halving_the_tolerance_changes_little(lv):
    coarse = LotkaVolterra("quick", {"tolerance": 1e-7}).simulate(torch.tensor([7]), 3, seed=2)
    fine = lv.simulate(torch.tensor([7]), 3, seed=2)
    assert float((coarse - fine).abs().max()) < 1e-5


def test_environment_changes_the_dynamics_monotonically(lv):
    """A larger predation rate b removes prey faster: the prey minimum falls as b grows (d fixed)."""
    envs = lv.environments()
    index = (envs[:, 1] == envs[0, 1]).nonzero().flatten()  # d = 0.5, b increasing
    x0 = torch.full((len(index), 1, 2), 2.0, dtype=torch.float64)
    traj = lv.solve(envs[index], x0)
    prey_min = traj[:, 0, :, 0].min(dim=1).values
    assert (prey_min.diff() < 0).all()


def test_statistics_are_moments_of_the_state(lv):
    states = torch.tensor([[2.0, 3.0]])
    assert lv.statistics(states).tolist() == [[2.0, 3.0, 4.0, 6.0, 9.0]]
