"""weightspace plugin: the baselines and peer methods, behind the same interfaces as DynaDiff's.

- encoders ``flat-vae`` (the sequence baseline) and ``identity`` (no compression: single-stage);
- generators ``flow-matching`` (rectified flow), ``mlp-diffusion`` (an MLP denoiser over flattened
  weights, for diffusion-initialized fine-tuning) and ``nearest`` (retrieval in prompt space);
- prompter ``descriptor`` (moments of the observed frames).

The ``stats`` prompter (DynaDiff's explicit branch alone) is registered by the DynaDiff plugin,
since it is that prompter with a branch switched off. What these components share with DynaDiff's
(the DiT, the diffusion objective and sampler, the attention stack, the prompter widths) comes
from :mod:`weightspace.nn`.
"""

from weightspace.hookspecs import Lazy, hookimpl


@hookimpl
def weightspace_encoders() -> list[Lazy]:
    return [
        Lazy("flat-vae", "weightspace_baselines.flat_vae:FlatVAE"),
        Lazy("identity", "weightspace_baselines.identity:IdentityEncoder"),
    ]


@hookimpl
def weightspace_generators() -> list[Lazy]:
    return [
        Lazy("flow-matching", "weightspace_baselines.flow_matching:FlowMatching"),
        Lazy("mlp-diffusion", "weightspace_baselines.mlp_diffusion:MLPDiffusion"),
        Lazy("nearest", "weightspace_baselines.nearest:NearestGenerator"),
    ]


@hookimpl
def weightspace_prompters() -> list[Lazy]:
    return [Lazy("descriptor", "weightspace_baselines.descriptor:DescriptorPrompter")]
