"""A third-party weightspace plugin with one component of each learned kind of the pipeline:

- encoder ``pca``: a linear autoencoder of a network's flattened, normalized weights;
- generator ``gaussian``: a Gaussian over latents whose mean is a linear map of the prompt;
- prompter ``channel-stats``: per-channel mean, spread and mean absolute change of the observed
  frames, through an MLP (fields ``[L, C, H, W]`` and ODE states ``[L, D]`` alike).

A run config names them in its ``[encoder]``, ``[generator]`` and ``[prompter]`` sections
(``tiny.toml`` beside this package). They are returned as :class:`~weightspace.hookspecs.Lazy`
references, so ``weightspace plugins`` lists them without importing torch.
"""

from weightspace.hookspecs import Lazy, hookimpl


@hookimpl
def weightspace_encoders() -> list[Lazy]:
    return [Lazy("pca", "generative_plugin.pca:PCAEncoder")]


@hookimpl
def weightspace_generators() -> list[Lazy]:
    return [Lazy("gaussian", "generative_plugin.gaussian:GaussianGenerator")]


@hookimpl
def weightspace_prompters() -> list[Lazy]:
    return [Lazy("channel-stats", "generative_plugin.channel_stats:ChannelStatsPrompter")]
