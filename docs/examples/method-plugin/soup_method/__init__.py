"""An adaptation method as a third-party plugin: ``zoo-soup``.

Per environment, the weight average ("model soup") of the zoo experts that best reproduce its
observed frames. Zoo experts are fine-tuned from one base, so they share a basin and their average
is a network of the same architecture. Once installed, it is evaluated like a built-in method::

    weightspace evaluate --zoo ZOO --method zoo-soup --method nearest-zoo --out rows.json

and it can be one of a bench matrix's ``baselines``.
"""

from __future__ import annotations

import time

import torch

from weightspace.evaluate.adaptation import observed_frames
from weightspace.hookspecs import hookimpl
from weightspace.method import Adapted, Environments, EvaluationOptions, Method
from weightspace.metrics import observation_residual


class ZooSoup(Method):
    name = "zoo-soup"
    options = ("observed_frames",)  # recorded in its rows; keys its bench evaluations
    size = 3
    """How many of the best-fitting zoo experts are averaged."""

    def adapt(self, zoo, run, environments: Environments, options: EvaluationOptions) -> Adapted:
        seed = zoo.manifest["seed"]
        observed = observed_frames(zoo.system(), environments.env_index, options.observed_frames, seed)
        start = time.perf_counter()
        experts, _ = zoo.experts()
        n = len(next(iter(experts.values())))
        k = min(self.size, n)
        soups = []
        with torch.no_grad():
            for frames in observed:
                target = frames.expand(n, *frames.shape)
                residual = observation_residual(zoo.adapter, experts, target, zoo.scale, zoo.dt)
                best = residual.topk(k, largest=False).indices
                soups.append({name: value[best].mean(dim=0) for name, value in experts.items()})
        params = {name: torch.stack([soup[name] for soup in soups]) for name in experts}
        seconds = (time.perf_counter() - start) / len(observed)
        return Adapted(params, seconds, fields={"soup_size": k})


@hookimpl
def weightspace_methods():
    return [ZooSoup]
