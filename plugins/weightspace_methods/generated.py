"""``generated``: a trained run's own experts, one forward pass per environment, no gradient step.

Each environment is generated on its own (prompt, sample, decode, rebuild, pick the best candidate
on the observed frames), so that the row's latency is that of one environment. The row also says
how close the generated experts sit to the zoo (:mod:`weightspace.evaluate.memorization`): a generator that
copies zoo experts would score as well as retrieval and no better; and how far each environment
looks from what the zoo covers (``shift``, :mod:`weightspace.evaluate.shift`): per environment, in
the split's order, the ``range`` score and flag, and the ``residual`` score and flag ranked against
the seen environments' (the ``test_in`` split's own residuals, when it is evaluated).
"""

from __future__ import annotations

import resource
import statistics
from collections.abc import Sequence

import torch

from weightspace.evaluate.adaptation import SplitExperts, generate_split
from weightspace.evaluate.memorization import memorization
from weightspace.evaluate.shift import RANGE_FLAG, RESIDUAL_FLAG, residual_score
from weightspace.method import Adapted, Environments, EvaluationOptions, Method
from weightspace.pipeline.run import Run
from weightspace.zoo import Zoo


def candidates(options: EvaluationOptions) -> int:
    """Candidates sampled per environment: the options' number, but one when one frame is observed,
    since a single frame gives no residual to choose among candidates by (the row records it)."""
    return options.candidates if options.observed_frames >= 2 else 1


def generate_for_split(run: Run, environments: Environments, options: EvaluationOptions) -> SplitExperts:
    """The run's expert for each environment of the split from its observed frames."""
    return generate_split(run, environments, options.observed_frames, candidates(options))


def memorization_probes(zoo: Zoo, n: int = 64) -> torch.Tensor:
    """``n`` states drawn (seeded) from the zoo's training trajectories: inputs on which experts are compared."""
    states = zoo.dataset()["train"].trajectories.flatten(0, 1)
    pick = torch.randint(len(states), (n,), generator=torch.Generator().manual_seed(zoo.manifest["seed"]))
    return states[pick].float()


def shift_record(experts: SplitExperts, reference: torch.Tensor | None) -> dict[str, list]:
    """The row's ``shift`` field (``residual`` scores only against a reference of seen residuals)."""
    record = {"range": experts.range_score.tolist(), "range_flag": (experts.range_score > RANGE_FLAG).tolist()}
    if reference is not None:
        score = residual_score(experts.residual, reference)
        record |= {"residual": score.tolist(), "residual_flag": (score > RESIDUAL_FLAG).tolist()}
    return record


class GeneratedExperts(Method):
    name = "generated"
    needs_run = True
    options = ("observed_frames", "candidates")

    def label(self, run: Run | None) -> str:
        return run.method if run is not None else self.name

    def adapt(self, zoo: Zoo, run: Run, environments: Environments, options: EvaluationOptions) -> Adapted:
        return self.adapt_splits(zoo, run, [environments], options)[0]

    def adapt_splits(
        self, zoo: Zoo, run: Run, splits: Sequence[Environments], options: EvaluationOptions
    ) -> list[Adapted]:
        made = [generate_for_split(run, environments, options) for environments in splits]
        seen = [experts.residual for experts, e in zip(made, splits) if e.split == "test_in"]
        return [self._adapted(zoo, experts, seen[0] if seen else None, options) for experts in made]

    def _adapted(
        self, zoo: Zoo, experts: SplitExperts, reference: torch.Tensor | None, options: EvaluationOptions
    ) -> Adapted:
        zoo_params, zoo_env = zoo.experts()
        latency = statistics.median(experts.latencies)
        fields = {
            "candidates": candidates(options),
            "gen_latency_ms": latency,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "memorization": memorization(
                zoo.adapter, experts.params, zoo_params, zoo_env, memorization_probes(zoo), zoo.scale
            ),
            "shift": shift_record(experts, reference),
        }
        return Adapted(experts.params, latency / 1000, fields)
