"""Evaluate adaptation methods by rollout on the held-out splits, and summarise results as rows of one schema.

Every method (:mod:`weightspace.method`, looked up in the registry by name) yields one expert per
evaluated environment. Each test trajectory is predicted from its initial frame over the whole
horizon (autoregressively for operators, by ODE integration for vector fields), batched over
experts and trajectories, and scored with :mod:`weightspace.metrics`. A row (one per method and
split) holds::

    system, architecture, method, split, rmse_mean, rmse_std, ssim_mean, valid_horizon,
    n_envs, n_traj, seconds_per_env, rmse_per_step, per_env, reference, fine_tunes_observed

plus the evaluation options the method reads and its own fields, where mean and std run over all
test trajectories of all environments of the split (``test_in``: seen environments, new initial
conditions; ``val_out``: unseen validation environments, what every choice is made on; ``test_out``:
unseen test environments, only reported), and ``per_env`` lists each environment's
parameters and mean RMSE (for maps over the environment grid). ``reference`` and
``fine_tunes_observed`` carry the method's roles (see :class:`weightspace.method.Method`), so a
report drawn from rows alone needs no plugin.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from weightspace.data.trajectories import by_environment
from weightspace.errors import ConfigError, PluginError
from weightspace.graph import Params
from weightspace.method import Environments, EvaluationOptions, Method
from weightspace.metrics import rollout_experts
from weightspace.pipeline.run import Run
from weightspace.registry import Registry, default_registry
from weightspace.zoo import Zoo

EVALUATED_SPLITS = ("test_in", "val_out", "test_out")


def rollout_summary(zoo: Zoo, params: Params, environments: Environments) -> dict[str, Any]:
    """The schema's metric fields of experts ``params`` (one per environment) rolled out on the
    environments' test trajectories."""
    traj = environments.trajectories
    metrics = rollout_experts(zoo.adapter, params, traj, zoo.scale, zoo.dt, zoo.zoo_settings.expert_batch)
    rmse = metrics.rmse.flatten()
    names = zoo.manifest["param_names"]
    return {
        "rmse_mean": float(rmse.mean()),
        "rmse_std": float(rmse.std(correction=0)),
        "ssim_mean": None if metrics.ssim_per_step is None else float(metrics.ssim_per_step.mean()),
        "valid_horizon": None if metrics.valid_horizon is None else float(metrics.valid_horizon.float().mean()),
        "n_envs": int(metrics.rmse.shape[0]),
        "n_traj": int(rmse.numel()),
        "rmse_per_step": metrics.rmse_per_step.flatten(0, -2).mean(dim=0).tolist(),
        "per_env": [
            {"env_index": int(e), "env_params": dict(zip(names, p.tolist())), "rmse": float(r)}
            for e, p, r in zip(environments.env_index, environments.env_params, metrics.rmse.mean(dim=1))
        ],
    }


def split_environments(zoo: Zoo, split: str) -> Environments:
    """The environments of an evaluated split of the zoo's dataset, with their test trajectories."""
    return Environments(split, *by_environment(zoo.dataset()[split]))


def methods(
    names: Sequence[str], registry: Registry | None = None, settings: Mapping[str, Mapping[str, Any]] | None = None
) -> list[Method]:
    """The registered methods ``names``, instantiated with their ``settings`` (keyword arguments by
    method name; none for the others)."""
    registry, settings = registry or default_registry(), settings or {}
    unknown = sorted(set(settings) - set(names))
    if unknown:
        raise ConfigError(f"settings for {', '.join(unknown)}, which is not evaluated here ({', '.join(names)})")
    built = []
    for name in names:
        try:
            built.append(registry.get("methods", name)(**settings.get(name, {})))
        except TypeError as exc:
            raise ConfigError(f"method {name!r} does not take settings {sorted(settings[name])}: {exc}") from None
    return built


def evaluate(
    zoo: Zoo,
    names: Sequence[str],
    *,
    run: Run | None = None,
    options: EvaluationOptions | None = None,
    registry: Registry | None = None,
    log: Callable[[str], None] = lambda _msg: None,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Rows of every method ``names`` on the evaluated splits of the zoo's dataset (``run``: the trained
    run the methods that ``needs_run`` adapt; its zoo is ``zoo``; ``settings``: keyword arguments of
    methods by name)."""
    options = options or EvaluationOptions()
    chosen = methods(names, registry, settings)
    for method in chosen:
        if method.needs_run and run is None:
            raise ConfigError(f"method {method.name!r} adapts a trained run; give one (--run DIR)")
    if run is not None and run.zoo.path != zoo.path:
        raise ConfigError(f"run {run.path} was trained on zoo {run.zoo.path}, not {zoo.path}")
    splits = [split_environments(zoo, split) for split in EVALUATED_SPLITS]
    counts = ", ".join(f"{len(e.env_index)} {e.split}" for e in splits)
    adaptations = {}
    for method in chosen:
        log(f"{method.label(run)} on {counts} environments")
        adaptations[method.name] = method.adapt_splits(zoo, run, splits, options)
        if len(adaptations[method.name]) != len(splits):
            raise PluginError(
                f"method {method.name!r} adapted {len(adaptations[method.name])} splits, not the {len(splits)} asked"
            )
    rows = []
    for i, environments in enumerate(splits):
        for method in chosen:
            label, adapted = method.label(run), adaptations[method.name][i]
            rows.append(
                {
                    "system": zoo.manifest["system"],
                    "architecture": zoo.manifest["architecture"],
                    "method": label,
                    "split": environments.split,
                    **rollout_summary(zoo, adapted.params, environments),
                    "seconds_per_env": adapted.seconds_per_env,
                    "reference": method.reference,
                    "fine_tunes_observed": method.fine_tunes_observed,
                    **options.select(method.options),
                    **adapted.fields,
                }
            )
    return rows
