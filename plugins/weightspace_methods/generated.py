"""``generated``: a trained run's own experts, one forward pass per environment, no gradient step.

Each environment is generated on its own (prompt, sample, decode, rebuild, pick the best candidate
on the observed frames), so that the row's latency is that of one environment. The row also says
how close the generated experts sit to the zoo (:mod:`weightspace.evaluate.memorization`): a generator that
copies zoo experts would score as well as retrieval and no better.
"""

from __future__ import annotations

import resource
import statistics

import torch

from weightspace.evaluate.adaptation import observed_frames
from weightspace.evaluate.memorization import memorization
from weightspace.graph import Params
from weightspace.method import Adapted, Environments, EvaluationOptions, Method
from weightspace.pipeline.run import Run
from weightspace.system import derived_seed
from weightspace.zoo import Zoo


def candidates(options: EvaluationOptions) -> int:
    """Candidates sampled per environment: the options' number, but one when one frame is observed,
    since a single frame gives no residual to choose among candidates by (the row records it)."""
    return options.candidates if options.observed_frames >= 2 else 1


def generate_for_split(run: Run, environments: Environments, options: EvaluationOptions) -> tuple[Params, list[float]]:
    """The run's experts for each environment from its observed frames, and each one's latency (ms)."""
    env_index, seed = environments.env_index, run.zoo.manifest["seed"]
    frames = observed_frames(run.zoo.system(), env_index, options.observed_frames, seed)
    parts, latencies = [], []
    for i in range(len(env_index)):
        out = run.generate(
            frames[i : i + 1],
            candidates(options),
            seed=derived_seed(seed, "generate", int(env_index[i])),
            env_params=environments.env_params[i : i + 1],
        )
        parts.append(out.params)
        latencies.append(1000 * out.seconds)
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}, latencies


def memorization_probes(zoo: Zoo, n: int = 64) -> torch.Tensor:
    """``n`` states drawn (seeded) from the zoo's training trajectories: inputs on which experts are compared."""
    states = zoo.dataset()["train"].trajectories.flatten(0, 1)
    pick = torch.randint(len(states), (n,), generator=torch.Generator().manual_seed(zoo.manifest["seed"]))
    return states[pick].float()


class GeneratedExperts(Method):
    name = "generated"
    needs_run = True
    options = ("observed_frames", "candidates")

    def label(self, run: Run | None) -> str:
        return run.method if run is not None else self.name

    def adapt(self, zoo: Zoo, run: Run, environments: Environments, options: EvaluationOptions) -> Adapted:
        params, latencies = generate_for_split(run, environments, options)
        zoo_params, zoo_env = zoo.experts()
        latency = statistics.median(latencies)
        fields = {
            "candidates": candidates(options),
            "gen_latency_ms": latency,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "memorization": memorization(zoo.adapter, params, zoo_params, zoo_env, memorization_probes(zoo), zoo.scale),
        }
        return Adapted(params, latency / 1000, fields)
