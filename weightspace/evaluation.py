"""Evaluate experts by rollout on the test splits, and summarise results as rows of one schema.

Every method yields one expert per evaluated environment. Each test trajectory is predicted from its
initial frame over the whole horizon (autoregressively for operators, by ODE integration for vector
fields), batched over experts and trajectories, and scored with :mod:`weightspace.metrics`. A row
(one per method and split) holds::

    system, architecture, method, split, rmse_mean, rmse_std, ssim_mean, valid_horizon,
    n_envs, n_traj, seconds_per_env, rmse_per_step, per_env

where mean and std run over all test trajectories of all environments of the split, and
``per_env`` lists each environment's parameters and mean RMSE (for maps over the environment grid).
"""

from __future__ import annotations

import resource
import statistics
from collections.abc import Callable, Sequence
from typing import Any

import torch

from weightspace.baselines import (
    BASELINES,
    Adapted,
    environment_trajectories,
    finetune_observed,
    nearest_zoo,
    one_for_all,
    one_per_env,
)
from weightspace.baselines import (
    observed_frames as observed_frames_of,
)
from weightspace.errors import ConfigError
from weightspace.generation import generate_experts
from weightspace.graph import Params
from weightspace.memorization import memorization
from weightspace.metrics import RolloutMetrics, rollout_experts
from weightspace.run import Run
from weightspace.system import derived_seed
from weightspace.trajectories import by_environment
from weightspace.transfer import finetune_from_inits
from weightspace.zoo import Zoo

TEST_SPLITS = ("test_in", "test_out")


def summary_row(
    metrics: RolloutMetrics, env_index: torch.Tensor, env_params: torch.Tensor, param_names: Sequence[str]
) -> dict[str, Any]:
    """The schema's metric fields from per-trajectory metrics ``[E, n]``."""
    rmse = metrics.rmse.flatten()
    return {
        "rmse_mean": float(rmse.mean()),
        "rmse_std": float(rmse.std(correction=0)),
        "ssim_mean": None if metrics.ssim_per_step is None else float(metrics.ssim_per_step.mean()),
        "valid_horizon": None if metrics.valid_horizon is None else float(metrics.valid_horizon.float().mean()),
        "n_envs": int(metrics.rmse.shape[0]),
        "n_traj": int(rmse.numel()),
        "rmse_per_step": metrics.rmse_per_step.flatten(0, -2).mean(dim=0).tolist(),
        "per_env": [
            {"env_index": int(e), "env_params": dict(zip(param_names, p.tolist())), "rmse": float(r)}
            for e, p, r in zip(env_index, env_params, metrics.rmse.mean(dim=1))
        ],
    }


def scored_row(
    zoo: Zoo,
    method: str,
    split: str,
    params: Params,
    environments: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    **extra: Any,
) -> dict[str, Any]:
    """The result row of ``method``'s experts (one per environment) rolled out on a split's
    ``(env_index, env_params, trajectories)``, with method-specific ``extra`` fields."""
    env_index, env_params, traj = environments
    metrics = rollout_experts(zoo.adapter, params, traj, zoo.scale, zoo.dt, zoo.zoo_settings.expert_batch)
    return {
        "system": zoo.manifest["system"],
        "architecture": zoo.manifest["architecture"],
        "method": method,
        "split": split,
        **summary_row(metrics, env_index, env_params, zoo.manifest["param_names"]),
        **extra,
    }


def adapt_baseline(
    zoo: Zoo,
    method: str,
    split: str,
    env_index: torch.Tensor,
    *,
    observed_frames: int = 4,
    finetune_steps: int = 100,
    finetune_lr: float | None = None,
) -> Adapted:
    """One expert per environment of ``split`` by a baseline method (see :mod:`weightspace.baselines`)."""
    if method not in BASELINES:
        raise ConfigError(f"unknown method {method!r}; methods: {', '.join(BASELINES)}")
    seed = zoo.manifest["seed"]
    if method == "one-for-all":
        return one_for_all(zoo, len(env_index))
    if method == "one-per-env":
        return one_per_env(zoo, env_index, environment_trajectories(zoo, split, env_index))
    observed = observed_frames_of(zoo.system(), env_index, observed_frames, seed)
    if method == "nearest-zoo":
        return nearest_zoo(zoo, observed)
    return finetune_observed(zoo, env_index, observed, finetune_steps, finetune_lr)


def finetune_budget_curve(
    zoo: Zoo,
    env_index: torch.Tensor,
    environments: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    budgets: Sequence[int],
    *,
    observed_frames: int,
    finetune_lr: float | None = None,
) -> list[dict[str, float]]:
    """finetune-L's out-of-domain RMSE and wall time per environment at each step budget, each budget
    a fine-tuning run of its own (with its own learning-rate schedule, as a user with that budget
    would run it): what it costs fine-tuning to reach the RMSE a generated expert has at once."""
    curve = []
    for steps in sorted(set(budgets)):
        adapted = adapt_baseline(
            zoo,
            "finetune-L",
            "test_out",
            env_index,
            observed_frames=observed_frames,
            finetune_steps=steps,
            finetune_lr=finetune_lr,
        )
        row = scored_row(zoo, "finetune-L", "test_out", adapted.params, environments)
        curve.append({"steps": steps, "rmse": row["rmse_mean"], "seconds_per_env": adapted.seconds_per_env})
    return curve


def evaluate_zoo(
    zoo: Zoo,
    methods: Sequence[str],
    *,
    observed_frames: int = 4,
    finetune_steps: int = 100,
    finetune_lr: float | None = None,
    finetune_budgets: Sequence[int] = (),
    log: Callable[[str], None] = lambda _msg: None,
) -> list[dict[str, Any]]:
    """Rows for every baseline method on both test splits of the zoo's dataset. With
    ``finetune_budgets``, finetune-L's out-of-domain row also holds its ``budget_curve``
    (:func:`finetune_budget_curve`)."""
    if any(b < 1 for b in finetune_budgets):
        raise ConfigError(f"finetune budgets must be positive step counts; got {list(finetune_budgets)}")
    dataset = zoo.dataset()
    rows = []
    for split in TEST_SPLITS:
        env_index, env_params, traj = by_environment(dataset[split])
        for method in methods:
            log(f"{method} on {split} ({len(env_index)} environments)")
            adapted = adapt_baseline(
                zoo,
                method,
                split,
                env_index,
                observed_frames=observed_frames,
                finetune_steps=finetune_steps,
                finetune_lr=finetune_lr,
            )
            extra = {
                "one-for-all": {},
                "one-per-env": {},
                "nearest-zoo": {"observed_frames": observed_frames},
                "finetune-L": {"observed_frames": observed_frames, "finetune_steps": finetune_steps},
            }[method]
            if method == "finetune-L" and split == "test_out" and finetune_budgets:
                log(f"finetune-L at {len(set(finetune_budgets))} step budgets on {split}")
                extra["budget_curve"] = finetune_budget_curve(
                    zoo,
                    env_index,
                    (env_index, env_params, traj),
                    finetune_budgets,
                    observed_frames=observed_frames,
                    finetune_lr=finetune_lr,
                )
            rows.append(
                scored_row(
                    zoo,
                    method,
                    split,
                    adapted.params,
                    (env_index, env_params, traj),
                    seconds_per_env=adapted.seconds_per_env,
                    **extra,
                )
            )
    return rows


def generate_for_split(
    run: Run, env_index: torch.Tensor, env_params: torch.Tensor, observed: int, n_candidates: int
) -> tuple[Params, list[float]]:
    """Generated experts for environments ``env_index`` from their observed frames, one environment at
    a time so that each generation's latency (prompt, sample, decode, rebuild, select) is measured."""
    system = run.zoo.system()
    seed = run.zoo.manifest["seed"]
    frames = observed_frames_of(system, env_index, observed, seed)
    normalized_env = run.env_scale.normalize(env_params)
    parts, latencies = [], []
    for i in range(len(env_index)):
        out = generate_experts(
            run.codec,
            run.generator,
            run.prompter,
            frames[i : i + 1],
            normalized_env[i : i + 1],
            run.zoo.scale,
            run.zoo.dt,
            n_candidates,
            seed=derived_seed(seed, "generate", int(env_index[i])),
        )
        parts.append(out.params)
        latencies.append(1000 * out.seconds)
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}, latencies


def memorization_probes(zoo: Zoo, n: int = 64) -> torch.Tensor:
    """``n`` states drawn (seeded) from the zoo's training trajectories: inputs on which experts are compared."""
    states = zoo.dataset()["train"].trajectories.flatten(0, 1)
    pick = torch.randint(len(states), (n,), generator=torch.Generator().manual_seed(zoo.manifest["seed"]))
    return states[pick].float()


def evaluate_run(
    run: Run, *, observed_frames: int = 4, n_candidates: int = 16, log: Callable[[str], None] = lambda _msg: None
) -> list[dict[str, Any]]:
    """Rows of the run's method (its generated experts, labelled ``run.method``) on both test
    splits, with generation latency (median over environments, ms), the process's peak resident
    memory, and how close the experts sit to the zoo (:mod:`weightspace.memorization`)."""
    zoo = run.zoo
    dataset = zoo.dataset()
    zoo_params, zoo_env = zoo.experts()
    probes = memorization_probes(zoo)
    rows = []
    for split in TEST_SPLITS:
        env_index, env_params, traj = by_environment(dataset[split])
        log(f"{run.method} on {split} ({len(env_index)} environments)")
        params, latencies = generate_for_split(run, env_index, env_params, observed_frames, n_candidates)
        rows.append(
            scored_row(
                zoo,
                run.method,
                split,
                params,
                (env_index, env_params, traj),
                seconds_per_env=statistics.median(latencies) / 1000,
                gen_latency_ms=statistics.median(latencies),
                peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                observed_frames=observed_frames,
                candidates=n_candidates,
                memorization=memorization(zoo.adapter, params, zoo_params, zoo_env, probes, zoo.scale),
            )
        )
    return rows


def evaluate_diffusion_init(
    run: Run,
    *,
    observed_frames: int = 4,
    n_candidates: int = 16,
    finetune_steps: int = 100,
    log: Callable[[str], None] = lambda _msg: None,
) -> list[dict[str, Any]]:
    """Rows of method ``diffusion-init``: the run's generated experts fine-tuned for ``finetune_steps``
    on each environment's training trajectories, with the fine-tuning curves from diffusion, random
    and base initialization (:mod:`weightspace.transfer`) under ``finetune``."""
    dataset = run.zoo.dataset()
    rows = []
    for split in TEST_SPLITS:
        env_index, env_params, traj = by_environment(dataset[split])
        log(f"diffusion-init on {split} ({len(env_index)} environments)")
        generated, latencies = generate_for_split(run, env_index, env_params, observed_frames, n_candidates)
        params, curves, seconds = finetune_from_inits(run.zoo, split, env_index, generated, finetune_steps)
        rows.append(
            scored_row(
                run.zoo,
                "diffusion-init",
                split,
                params,
                (env_index, env_params, traj),
                seconds_per_env=statistics.median(latencies) / 1000 + seconds,
                generator_run=run.method,
                observed_frames=observed_frames,
                candidates=n_candidates,
                finetune_steps=finetune_steps,
                finetune=curves,
            )
        )
    return rows
