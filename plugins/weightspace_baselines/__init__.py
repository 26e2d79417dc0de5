"""weightspace plugin: the baselines and peer methods, behind the same interfaces as DynaDiff's.

- encoders ``flat-vae`` (the sequence baseline) and ``identity`` (no compression: single-stage);
- generators ``flow-matching`` (rectified flow), ``mlp-diffusion`` (an MLP denoiser over flattened
  weights, for diffusion-initialized fine-tuning) and ``nearest`` (retrieval in prompt space);
- prompter ``descriptor`` (moments of the observed frames).

The ``stats`` prompter (DynaDiff's explicit branch alone) is registered by ``weightspace_dynadiff``,
since it is that prompter with a branch switched off.
"""

from weightspace.hookspecs import hookimpl
from weightspace_baselines.descriptor import DescriptorPrompter
from weightspace_baselines.flat_vae import FlatVAE
from weightspace_baselines.flow_matching import FlowMatching
from weightspace_baselines.identity import IdentityEncoder
from weightspace_baselines.mlp_diffusion import MLPDiffusion
from weightspace_baselines.nearest import NearestGenerator


@hookimpl
def weightspace_encoders() -> list[type]:
    return [FlatVAE, IdentityEncoder]


@hookimpl
def weightspace_generators() -> list[type]:
    return [FlowMatching, MLPDiffusion, NearestGenerator]


@hookimpl
def weightspace_prompters() -> list[type]:
    return [DescriptorPrompter]
