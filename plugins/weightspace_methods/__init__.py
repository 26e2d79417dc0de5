"""weightspace plugin: the built-in adaptation methods, registered like a third party's.

- ``one-for-all``: the zoo's base expert for every environment;
- ``one-per-env``: the base fine-tuned on the environment's own training trajectories (the reference);
- ``finetune-L``: the base fine-tuned on the L observed frames;
- ``nearest-zoo``: the zoo expert that best reproduces the observed frames;
- ``generated``: a trained run's generated experts (how every run is evaluated by default);
- ``diffusion-init``: a run's generated experts fine-tuned on the environment's trajectories;
- ``adjoint-matching``: a run's flow generator tuned toward the observed frames, then sampled.
"""

from weightspace.hookspecs import Lazy, hookimpl


@hookimpl
def weightspace_methods() -> list[Lazy]:
    return [
        Lazy("one-for-all", "weightspace_methods.baselines:OneForAll"),
        Lazy("one-per-env", "weightspace_methods.baselines:OnePerEnv"),
        Lazy("finetune-L", "weightspace_methods.baselines:FinetuneL"),
        Lazy("nearest-zoo", "weightspace_methods.baselines:NearestZoo"),
        Lazy("generated", "weightspace_methods.generated:GeneratedExperts"),
        Lazy("diffusion-init", "weightspace_methods.diffusion_init:DiffusionInit"),
        Lazy("adjoint-matching", "weightspace_methods.adjoint_matching:AdjointMatching"),
    ]
