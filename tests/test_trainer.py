"""The batched expert trainer: batched equals looped, early stopping keeps the best, experts are independent."""

import pytest
import torch

import weightspace as ws
from weightspace.data.trajectories import ChannelScale, by_environment
from weightspace.errors import ConfigError
from weightspace.zoo.trainer import TrainConfig, TrainingData, train_experts, validation_windows, window_loss


def _lv_data(n_envs=3, n_traj=3, n_frames=21):
    system = ws.system("lotka-volterra", n_frames=n_frames, n_b=2, n_d=2, n_seen=2)
    traj = system.simulate(torch.arange(n_envs), n_traj, seed=0).float()
    scale = ChannelScale.fit(traj, 1)
    return TrainingData(traj[:, :-1], traj[:, -1:], scale, system.settings.dt)


def _grid_data(n_envs=2, n_traj=3, n_frames=6):
    g = torch.Generator().manual_seed(0)
    traj = torch.randn(n_envs, n_traj, n_frames, 1, 8, 8, generator=g).cumsum(dim=2) * 0.3
    return TrainingData(traj[:, :-1], traj[:, -1:], ChannelScale.fit(traj, 3), 1.0)


CASES = {
    "mlp-node": (lambda: ws.architecture("mlp-node", hidden_width=8), _lv_data, 3),
    "fno": (
        lambda: ws.architecture("fno", hidden_channels=4, n_layers=1, n_modes=(3, 3), grid_size=(8, 8)),
        _grid_data,
        1,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_batched_training_equals_looped(name):
    make, data_fn, unroll = CASES[name]
    adapter, data = make(), data_fn()
    init = adapter.init_params(4, seed=1)
    config = TrainConfig(steps=12, lr=1e-2, batch_size=4, unroll=unroll, eval_every=4, patience=2)
    group, seeds = [0, 1, 0, 1], [5, 6, 7, 8]
    batched = train_experts(adapter, init, data, group, seeds, config)
    looped = train_experts(adapter, init, data, group, seeds, config, expert_batch=1)
    for k in init:
        torch.testing.assert_close(batched.params[k], looped.params[k], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(batched.val_loss, looped.val_loss, rtol=1e-4, atol=1e-7)
    assert torch.equal(batched.best_step, looped.best_step)
    windows = validation_windows(data, torch.tensor(group), config)
    with torch.no_grad():
        initial = window_loss(adapter, init, windows, data.scale, data.dt)
    assert (batched.val_loss < initial).all()


def test_an_expert_does_not_depend_on_its_batch_mates():
    adapter, data = CASES["mlp-node"][0](), _lv_data()
    init = adapter.init_params(3, seed=2)
    config = TrainConfig(steps=8, lr=1e-2, batch_size=4, unroll=2, eval_every=4)
    alone = train_experts(adapter, {k: v[:1] for k, v in init.items()}, data, [0], [11], config)
    mates = dict(init)
    mates = {k: torch.cat([v[:1], 1e3 * v[1:]]) for k, v in init.items()}  # batch mates that blow up
    together = train_experts(adapter, mates, data, [0, 1, 2], [11, 12, 13], config)
    for k in init:
        torch.testing.assert_close(together.params[k][:1], alone.params[k], rtol=1e-5, atol=1e-6)
    assert torch.isfinite(together.params["layers.0.weight"][0]).all()


def test_a_stopped_expert_is_no_longer_run(monkeypatch):
    adapter, data = CASES["mlp-node"][0](), _lv_data()
    init = adapter.init_params(2, seed=2)
    init = {k: torch.stack([v[0], torch.full_like(v[1], torch.nan)]) for k, v in init.items()}  # never finite
    config = TrainConfig(steps=12, lr=1e-2, batch_size=4, unroll=2, eval_every=2, patience=2)
    alone = train_experts(adapter, {k: v[:1] for k, v in init.items()}, data, [0], [11], config)
    experts_run, rollout = [], adapter.rollout

    def counted(params, *args, **kwargs):
        experts_run.append(next(iter(params.values())).shape[0])
        return rollout(params, *args, **kwargs)

    monkeypatch.setattr(adapter, "rollout", counted)
    together = train_experts(adapter, init, data, [0, 1], [11, 12], config)
    # the second expert stopped at the second evaluation (step 4): from step 5 on only the first is run
    assert together.best_step[1] == 0 and not torch.isfinite(together.val_loss[1])
    assert experts_run[:7] == [2] * 7 and set(experts_run[7:]) == {1}  # validation, 2 steps, ... to step 4
    assert torch.isnan(together.val_curve[3:, 1]).all() and torch.isfinite(together.val_curve[:, 0]).all()
    for k in init:  # and its running mate trains exactly as it would alone
        torch.testing.assert_close(together.params[k][:1], alone.params[k], rtol=1e-5, atol=1e-6)


def test_early_stopping_keeps_the_best_parameters():
    adapter, data = CASES["mlp-node"][0](), _lv_data()
    init = adapter.init_params(2, seed=3)
    # a learning rate far too high: training degrades, the best parameters are the initial ones or early ones
    config = TrainConfig(steps=200, lr=5.0, batch_size=4, unroll=2, eval_every=2, patience=2)
    result = train_experts(adapter, init, data, [0, 1], [1, 2], config)
    assert (result.best_step < 200).all()
    windows = validation_windows(data, torch.tensor([0, 1]), config)
    with torch.no_grad():
        initial = window_loss(adapter, init, windows, data.scale, data.dt)
        returned = window_loss(adapter, result.params, windows, data.scale, data.dt)
    torch.testing.assert_close(returned, result.val_loss)  # the best parameters are the ones returned
    assert (result.val_loss <= initial).all()


def test_training_rejects_mismatched_groups():
    adapter, data = CASES["mlp-node"][0](), _lv_data()
    with pytest.raises(ConfigError, match="2 experts need 2 data groups"):
        train_experts(adapter, adapter.init_params(2), data, [0], [1, 2], TrainConfig(steps=1))


def test_by_environment_groups_trajectories():
    system = ws.system("lotka-volterra", n_b=2, n_d=2, n_seen=2, n_train=2, n_test=1, n_frames=5)
    from weightspace.data.simulation import build_dataset

    dataset = build_dataset(system, seed=0)
    env, params, traj = by_environment(dataset["train"])
    assert traj.shape == (2, 2, 5, 2)
    for e, p, t in zip(env, params, traj):
        rows = dataset["train"].env_index == e
        assert torch.equal(t, dataset["train"].trajectories[rows])
        assert torch.equal(p, dataset["train"].env_params[rows][0])


def test_validation_curve_has_one_row_per_evaluation():
    adapter = ws.architecture("mlp-node", hidden_width=4)
    traj = 1 + torch.rand(1, 3, 12, 2, generator=torch.Generator().manual_seed(0))
    data = TrainingData(traj, traj, ChannelScale(torch.zeros(2), torch.ones(2)), 0.1)
    config = TrainConfig(steps=7, eval_every=3, patience=100, unroll=2, batch_size=4)
    result = train_experts(adapter, adapter.init_params(2, seed=0), data, [0, 0], [1, 2], config, expert_batch=1)
    assert result.curve_steps == [0, 3, 6, 7] and result.val_curve.shape == (4, 2)
    torch.testing.assert_close(result.val_curve.min(dim=0).values, result.val_loss)
