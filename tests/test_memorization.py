"""Nearest-neighbour distances in function space: copies of zoo experts score 0, fresh networks far."""

import torch

import weightspace as ws
from weightspace.data.trajectories import ChannelScale
from weightspace.evaluate.memorization import memorization


def test_copies_of_zoo_experts_have_zero_distance_and_fresh_networks_do_not():
    adapter = ws.architecture("mlp-node", hidden_width=8)
    base = adapter.init_params(1, seed=0)
    # a zoo of 3 environments x 2 near-twins each
    noise = torch.Generator().manual_seed(1)
    envs = [{k: v + 0.3 * torch.randn(v.shape, generator=noise) for k, v in base.items()} for _ in range(3)]
    zoo = {k: torch.cat([e[k] + 0.01 * torch.randn(2, *e[k].shape[1:], generator=noise) for e in envs]) for k in base}
    zoo_env = torch.tensor([0, 0, 1, 1, 2, 2])
    probes = adapter.example_input(32, torch.Generator().manual_seed(2))
    scale = ChannelScale(torch.zeros(2), torch.ones(2))
    copies = memorization(adapter, {k: v[[0, 3]] for k, v in zoo.items()}, zoo, zoo_env, probes, scale)
    assert copies["nn_distance"] == 0 and copies["ratio"] == 0
    assert copies["zoo_nn_distance"] < copies["zoo_nn_other_env_distance"]  # twins sit closer than other envs
    fresh = memorization(adapter, adapter.init_params(2, seed=9), zoo, zoo_env, probes, scale)
    assert fresh["ratio"] > 1 and fresh["nn_distance"] > copies["zoo_nn_distance"]
