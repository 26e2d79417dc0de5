"""``adjoint-matching``: a trained flow generator tuned, for each environment, toward the experts that
explain its observed frames, then sampled and selected as ``generated`` does.

Best-of-N generation uses the observed frames only to pick among candidates; fine-tuning the base
on them (finetune-L) overfits a few frames. Here the frames tilt the generator instead
(:mod:`weightspace.pipeline.reward_tuning`): a copy of the run's flow is tuned by adjoint matching
toward ``p(latent | prompt) * residual(latent)^(-reward_scale)``, so candidates move toward experts
that reproduce the frames while staying on the learned weight manifold. Rules:

- Each environment gets its own tuned copy (an environment's expert never depends on which others
  it is evaluated with), then ``candidates`` samples with the sampling seed ``generated`` uses, the
  best on the frames kept: rows of the two methods on one run are paired sample for sample.
- Settings are :class:`weightspace.nn.adjoint_matching.AdjointMatchingConfig`'s fields (a
  matrix entry's ``settings``); ``seconds_per_env`` is the tuning plus generation time of one
  environment. Rows record the settings (``adjoint_matching``) and the mean tuning loss of the
  first and last steps (``tuning_loss``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, fields
from typing import Any

import torch

from weightspace.errors import ConfigError
from weightspace.evaluate.adaptation import observed_frames
from weightspace.method import Adapted, Environments, EvaluationOptions, Method
from weightspace.nn.adjoint_matching import AdjointMatchingConfig
from weightspace.pipeline.reward_tuning import tune_toward_frames
from weightspace.pipeline.run import Run
from weightspace.system import derived_seed
from weightspace.zoo import Zoo


class AdjointMatching(Method):
    """See the module docstring."""

    name = "adjoint-matching"
    needs_run = True
    options = ("observed_frames", "candidates")

    def __init__(self, **settings: Any) -> None:
        known = [f.name for f in fields(AdjointMatchingConfig)]
        unknown = sorted(set(settings) - set(known))
        if unknown:
            raise ConfigError(
                f"adjoint-matching: unknown setting(s) {', '.join(unknown)}; settings: {', '.join(known)}"
            )
        self.config = AdjointMatchingConfig(**settings)

    def adapt(self, zoo: Zoo, run: Run, environments: Environments, options: EvaluationOptions) -> Adapted:
        if options.observed_frames < 2:
            raise ConfigError("adjoint-matching's reward is the residual on the observed frames: observe 2 or more")
        seed, env_index = zoo.manifest["seed"], environments.env_index
        frames = observed_frames(zoo.system(), env_index, options.observed_frames, seed)
        parts, seconds, first, last = [], [], [], []
        for i, env in enumerate(env_index.tolist()):
            start = time.perf_counter()
            tuned, losses = tune_toward_frames(
                run, frames[i : i + 1], self.config, derived_seed(seed, "adjoint-matching", env)
            )
            out = tuned.generate(frames[i : i + 1], options.candidates, seed=derived_seed(seed, "generate", env))
            seconds.append(time.perf_counter() - start)
            parts.append(out.params)
            first.append(losses[0])
            last.append(losses[-1])
        params = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        row = {
            "candidates": options.candidates,
            "adjoint_matching": asdict(self.config),
            "tuning_loss": {"first": sum(first) / len(first), "last": sum(last) / len(last)},
        }
        return Adapted(params, sum(seconds) / len(seconds), row)
