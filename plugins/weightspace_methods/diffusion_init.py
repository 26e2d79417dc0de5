"""``diffusion-init``: generated weights as an initialization, fine-tuned; with the same budget
spent from random and base initialization for comparison.

The use of "Task-Conditioned Diffusion Models in Weight Space for Rapid Transfer": generate an
expert for an environment from a few observed frames, then fine-tune it on the environment's
training trajectories (for unseen environments, simulated from the seed stream ``oracle``, as
One-per-Env gets them). The same budget is spent from two other starting points: the
architecture's random initialization and the zoo's base expert (One-for-All). All 3 x E experts
are trained in one call of the zoo's trainer with its settings, early stopping off, evaluating the
validation loss 20 times; the experts kept are the best by validation loss.

The target loss of an environment is the validation loss that base initialization reaches at the
end of the budget; each start's "steps to target" is the first evaluation at which it is reached
(the median over environments, and the fraction of environments where it is reached at all).
"""

from __future__ import annotations

import statistics
from dataclasses import replace
from typing import Any

import torch

from weightspace.evaluate.adaptation import base_experts, environment_trajectories, training_data
from weightspace.graph import Params
from weightspace.method import Adapted, Environments, EvaluationOptions, Method
from weightspace.pipeline.run import Run
from weightspace.system import derived_seed
from weightspace.zoo import Zoo
from weightspace.zoo.trainer import train_experts
from weightspace_methods.generated import candidates, generate_for_split

INITS = ("diffusion", "random", "base")


class DiffusionInit(Method):
    """The run's generated experts fine-tuned for ``finetune_steps`` on each environment's training
    trajectories; the row holds the fine-tuning curves from diffusion, random and base
    initialization under ``finetune`` and the generating run's method under ``generator_run``."""

    name = "diffusion-init"
    needs_run = True
    options = ("observed_frames", "candidates", "finetune_steps")

    def adapt(self, zoo: Zoo, run: Run, environments: Environments, options: EvaluationOptions) -> Adapted:
        made = generate_for_split(run, environments, options)
        generated, latencies = made.params, made.latencies
        env_index = environments.env_index
        params, curves, seconds = finetune_from_inits(
            zoo, environments.split, env_index, generated, options.finetune_steps
        )
        seconds_per_env = statistics.median(latencies) / 1000 + seconds
        fields = {"candidates": candidates(options), "generator_run": run.method, "finetune": curves}
        return Adapted(params, seconds_per_env, fields)


def finetune_from_inits(
    zoo: Zoo, split: str, env_index: torch.Tensor, generated: Params, steps: int
) -> tuple[Params, dict[str, Any], float]:
    """Fine-tune the generated experts (one per environment of ``split``) and the two reference starts.

    Returns the fine-tuned generated experts, the curves record (see the module docstring) and the
    fine-tuning wall time per generated expert."""
    n, seed = len(env_index), zoo.manifest["seed"]
    inits = {
        "diffusion": generated,
        "random": zoo.adapter.init_params(n, seed=derived_seed(seed, "random-init")),
        "base": base_experts(zoo, n),
    }
    stacked = {k: torch.cat([inits[name][k] for name in INITS]) for k in generated}
    config = zoo.zoo_settings.training(base=False)
    config = replace(config, steps=steps, eval_every=max(1, steps // 20), patience=steps + 1)
    data = training_data(zoo, environment_trajectories(zoo, split, env_index))
    seeds = [derived_seed(seed, "diffusion-init", name, int(e)) for name in INITS for e in env_index]
    result = train_experts(
        zoo.adapter,
        stacked,
        data,
        list(range(n)) * len(INITS),
        seeds,
        config,
        expert_batch=zoo.zoo_settings.expert_batch,
    )
    curve = result.val_curve.view(len(result.curve_steps), len(INITS), n)
    target = curve[-1, INITS.index("base")]
    record: dict[str, Any] = {
        "steps": result.curve_steps,
        "val_loss": {name: curve[:, i].mean(dim=1).tolist() for i, name in enumerate(INITS)},
        "target_loss": statistics.median(target.tolist()),
        "steps_to_target": {},
        "reached": {},
    }
    for i, name in enumerate(INITS):
        hit = curve[:, i] <= target * (1 + 1e-6)  # [evals, E]
        reached = hit.any(dim=0)
        first = hit.float().argmax(dim=0)
        found = [result.curve_steps[int(f)] for f, r in zip(first, reached) if r]
        record["steps_to_target"][name] = statistics.median(found) if found else None
        record["reached"][name] = float(reached.float().mean())
    params = {k: v[:n] for k, v in result.params.items()}
    return params, record, result.seconds / len(INITS) / n
