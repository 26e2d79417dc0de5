"""Train an encoder on a zoo: reconstruction + KL + the function loss, and measure it in function space.

The function loss runs decoded and original weights through the real architecture (the adapter's
batched functional evaluation) on probe inputs: states drawn from the zoo's training trajectories
(one-step inputs for operators, states along trajectories for vector fields). Outputs are compared
on the per-channel normalized scale, so the loss reads as a normalized MSE. Weight graphs are
normalized (:class:`weightspace.graph.GraphNormalizer`) before encoding; when the normalizer
subtracts a reference network, every network is first aligned to it by weight matching, so that
encoding does not depend on the order of hidden units.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from weightspace.architecture import ArchitectureAdapter
from weightspace.components import Encoder
from weightspace.config import require_positive
from weightspace.data.trajectories import ChannelScale
from weightspace.graph import GraphNormalizer, Params, WeightGraph, align_to, permute_params, random_permutations


@dataclass(frozen=True)
class EncoderTraining:
    steps: int = 1500
    lr: float = 1e-3
    batch_size: int = 16
    n_probes: int = 32
    """Probe inputs per step for the function loss."""
    holdout: float = 0.1
    """Fraction of zoo experts held out to measure reconstruction (at least one)."""
    centre: Literal["group", "network"] = "network"
    """Normalization: subtract the zoo's mean network (``network``) or only per-group means (``group``)."""
    seed: int | None = None
    """Seeds this stage alone (held-out split, initialization, batches, probes), for a seed study of
    the encoder over one zoo; default: the run's seed."""

    def __post_init__(self) -> None:
        require_positive(self, "steps", "lr", "batch_size", "n_probes")
        if not 0 < self.holdout < 1:
            raise ValueError(f"holdout must be in (0, 1), got {self.holdout}")
        if self.centre not in ("group", "network"):
            raise ValueError(f"centre must be 'group' or 'network', got {self.centre!r}")


@dataclass(frozen=True)
class WeightCodec:
    """An encoder with the normalizer and architecture it serves: parameters <-> latent tokens."""

    encoder: Encoder
    normalizer: GraphNormalizer
    adapter: ArchitectureAdapter

    def nodes(self, params: Params) -> tuple[torch.Tensor, ...]:
        """The normalized node features the encoder reads, networks aligned to the reference first."""
        reference = self.normalizer.reference_params()
        if reference is not None:
            params = permute_params(self.adapter.spec, params, align_to(self.adapter.spec, params, reference))
        return self.normalizer.normalize(self.adapter.to_graph(params)).nodes

    def encode(self, params: Params) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder.encode(self.nodes(params))

    def decode(self, latents: torch.Tensor) -> Params:
        graph = WeightGraph(self.adapter.spec, self.encoder.decode(latents))
        return self.adapter.from_graph(self.normalizer.denormalize(graph))


def fit_normalizer(
    adapter: ArchitectureAdapter, params: Params, centre: Literal["group", "network"], rounds: int = 3
) -> GraphNormalizer:
    """The normalizer of a zoo's networks. For ``centre="network"`` the networks are first brought
    into one order: aligned to the first, then, ``rounds`` times, to the mean of the aligned ones.
    A domain-adaptive zoo is already in its base's order; a randomly initialized one is not."""
    if centre == "group":
        return GraphNormalizer.fit(adapter.to_graph(params), centre)
    spec, reference = adapter.spec, {k: v[:1] for k, v in params.items()}
    for _ in range(rounds):
        aligned = permute_params(spec, params, align_to(spec, params, reference))
        reference = {k: v.mean(dim=0, keepdim=True) for k, v in aligned.items()}
    return GraphNormalizer.fit(adapter.to_graph(aligned), centre)


def function_error(
    adapter: ArchitectureAdapter, params: Params, reference: Params, probes: torch.Tensor, scale: ChannelScale
) -> torch.Tensor:
    """Mean squared difference of outputs ``[B]`` of two batches of networks on shared probe inputs,
    in units of the per-channel std (the expert outputs' scale)."""
    with torch.no_grad():
        target = adapter.functional(reference, probes)
    return _output_error(adapter.functional(params, probes), target, scale)


def _output_error(outputs: torch.Tensor, target: torch.Tensor, scale: ChannelScale) -> torch.Tensor:
    """Per-network mean squared difference ``[B]`` of outputs in units of the per-channel std."""
    return ((outputs - target) / scale.std.to(outputs.device)).pow(2).flatten(1).mean(dim=1)


def split_holdout(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of training and held-out experts (a seeded random choice)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_out = max(1, round(fraction * n))
    return order[n_out:].sort().values, order[:n_out].sort().values


def fit_encoder(
    codec: WeightCodec,
    params: Params,
    probes: torch.Tensor,
    scale: ChannelScale,
    training: EncoderTraining,
    seed: int,
    advance: Callable[[int], None] | None = None,
) -> list[dict[str, float]]:
    """Train ``codec.encoder`` on the networks ``params`` (``[N, ...]``); returns the loss history
    (one entry per 50 steps) with its parts: mse, kl, function. An encoder without parameters (the
    ``identity``) has nothing to learn: the history is empty.

    Training runs on the encoder's device (move it first); the data follow it, while every random
    draw comes from a CPU generator, so a seed gives the same batches and noise on any device."""
    encoder, config = codec.encoder, codec.encoder.config
    if not any(p.requires_grad for p in encoder.parameters()):
        return []
    device = encoder.device
    nodes = tuple(t.to(device) for t in codec.nodes(params))
    params, probes = {k: v.to(device) for k, v in params.items()}, probes.to(device)
    n = nodes[0].shape[0]
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=training.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, training.steps, eta_min=0.05 * training.lr)
    history, totals = [], torch.zeros(4)
    encoder.train()
    for step in range(1, training.steps + 1):
        idx = torch.randint(n, (min(training.batch_size, n),), generator=generator)
        batch = tuple(t[idx] for t in nodes)
        mean, logvar = encoder.encode(batch)
        latents = mean + torch.randn(mean.shape, generator=generator).to(device) * (0.5 * logvar).exp()
        decoded = encoder.decode(latents)
        sq = sum((d - t).pow(2).sum() for d, t in zip(decoded, batch))
        mse = sq / sum(t[0].numel() for t in batch) / len(idx)
        kl = -0.5 * (1 + logvar - mean.pow(2) - logvar.exp()).mean()
        loss = mse + config.beta * kl
        func = torch.zeros(())
        if config.function_weight > 0:
            graph = WeightGraph(codec.adapter.spec, decoded)
            recon = codec.adapter.from_graph(codec.normalizer.denormalize(graph))
            pick = torch.randint(len(probes), (training.n_probes,), generator=generator)
            func = function_error(codec.adapter, recon, {k: v[idx] for k, v in params.items()}, probes[pick], scale)
            func = func.mean()
            loss = loss + config.function_weight * func
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(encoder.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        totals += torch.tensor([loss.item(), mse.item(), kl.item(), func.item()])
        if advance is not None:
            advance(1)
        if step % 50 == 0 or step == training.steps:
            count = (step - 1) % 50 + 1
            history.append({"step": step, **dict(zip(("loss", "mse", "kl", "function"), (totals / count).tolist()))})
            totals.zero_()
    encoder.eval()
    return history


def reconstruction_error(
    codec: WeightCodec, params: Params, probes: torch.Tensor, scale: ChannelScale
) -> dict[str, float]:
    """Weight-space MSE (normalized features) and function-space error of reconstructing ``params``
    through the latent means, averaged over networks."""
    with torch.no_grad():
        nodes = codec.nodes(params)
        mean, _ = codec.encoder.encode(nodes)
        decoded = codec.encoder.decode(mean)
        mse = sum((d - t).pow(2).sum() for d, t in zip(decoded, nodes)) / sum(t.numel() for t in nodes)
        recon = codec.adapter.from_graph(codec.normalizer.denormalize(WeightGraph(codec.adapter.spec, decoded)))
        func = function_error(codec.adapter, recon, params, probes, scale).mean()
    return {"weight_mse": float(mse), "function_error": float(func)}


def nearest_function_error(
    adapter: ArchitectureAdapter, params: Params, pool: Params, probes: torch.Tensor, scale: ChannelScale
) -> torch.Tensor:
    """For each network of ``params`` (``[B]``), the smallest function error (as
    :func:`function_error`) to any network of ``pool``: what retrieving the closest pool network
    instead of reconstructing would cost. It is the floor against which a held-out reconstruction
    error reads: a zoo's experts of one environment can differ from each other by about as much as
    a reconstruction differs from its original (measured figures: docs/lab-notebook.md)."""
    best = []
    with torch.no_grad():
        targets = adapter.functional(params, probes)
        pool_size = next(iter(pool.values())).shape[0]
        for start in range(0, pool_size, 16):
            outputs = adapter.functional({k: v[start : start + 16] for k, v in pool.items()}, probes)
            best.append(torch.stack([_output_error(outputs, t, scale).min() for t in targets]))
    return torch.stack(best).min(dim=0).values


def permutation_sensitivity(
    codec: WeightCodec, params: Params, probes: torch.Tensor, scale: ChannelScale, fraction: float, seed: int
) -> float:
    """Function-space change of reconstructed networks when ``fraction`` of each network's hidden
    units are shuffled before encoding (which leaves the networks' functions as they were): the
    normalized MSE between the decoded outputs with and without the shuffle, averaged over networks."""
    batch = next(iter(params.values())).shape[0]
    perms = random_permutations(codec.adapter.spec, batch, torch.Generator().manual_seed(seed), fraction)
    shuffled = permute_params(codec.adapter.spec, params, perms)
    with torch.no_grad():
        plain, moved = (codec.decode(codec.encode(p)[0]) for p in (params, shuffled))
        return float(function_error(codec.adapter, moved, plain, probes, scale).mean())
