"""Generic building blocks of weight-space generative models, shared by the component plugins.

Plugins build their registered encoders, generators and prompters from these, so that no plugin
imports another: DynaDiff's components and the baselines that are compared with them use the
very same networks, objectives and samplers. Nothing here is registered, and nothing here imports
a plugin.

- :mod:`weightspace.nn.attention`: the pre-norm transformer stack of the attention VAEs, and their options;
- :mod:`weightspace.nn.dit`: the DiT denoiser (timestep embedding, adaLN-Zero blocks);
- :mod:`weightspace.nn.diffusion`: the noise schedules, the diffusion loss and the DDIM sampler;
- :mod:`weightspace.nn.latent_model`: the base of generators over latent tokens (standardized
  latents, classifier-free guidance, the optional mean head);
- :mod:`weightspace.nn.latent_diffusion`: diffusion on that base, open to any denoiser network;
- :mod:`weightspace.nn.prompter`: the widths an MLP prompter is built from.
"""
