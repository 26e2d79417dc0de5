"""Hidden-unit permutations: the symmetry every weight-space model should respect.

Reordering a set of interchangeable hidden units (and, with them, every parameter axis that the
spec's ``PermutationSpec`` lists) leaves the network's function unchanged. These helpers apply such
permutations to parameters or graphs, for data augmentation and for the equivariance tests, and
align networks to a reference (weight matching) so that a model which is not itself invariant sees
every network in one canonical order.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from scipy.optimize import linear_sum_assignment

from weightspace.errors import WeightError
from weightspace.graph.spec import GraphSpec
from weightspace.graph.weight_graph import Params, WeightGraph, check_params


def random_permutations(
    spec: GraphSpec, batch_size: int, generator: torch.Generator, fraction: float = 1.0
) -> dict[str, torch.Tensor]:
    """One random permutation per permutable set and per network: ``{name: [B, size]}``.

    With ``fraction`` < 1, only a random ``fraction`` of each set's units (at least two) are shuffled
    among themselves, a cyclic shift so that each of them moves; the rest stay in place."""
    if not 0 < fraction <= 1:
        raise WeightError(f"fraction of hidden units to permute must be in (0, 1], got {fraction}")
    out = {}
    for p in spec.permutations:
        perm = torch.rand(batch_size, p.size, generator=generator).argsort(dim=1)
        if fraction < 1:
            k = min(p.size, max(2, round(fraction * p.size)))
            chosen = perm[:, :k]
            perm = torch.arange(p.size).expand(batch_size, -1).clone()
            perm.scatter_(1, chosen, chosen.roll(1, dims=1))
        out[p.name] = perm
    return out


def permute_params(spec: GraphSpec, params: Mapping[str, torch.Tensor], perms: Mapping[str, torch.Tensor]) -> Params:
    """Apply ``perms`` (``{name: [size]}`` shared by the batch, or ``[B, size]``) to batched params.

    Sets not named in ``perms`` stay as they are.
    """
    check_params(spec, params, batched=True, check_finite=False)
    out = dict(params)
    batch = next(iter(params.values())).shape[0]
    for name, perm in perms.items():
        ps = spec.permutation(name)
        index = _batched_index(name, perm, batch, ps.size)
        for ax in ps.axes:
            t = out[ax.param]
            dim = ax.axis + 1
            view = [batch] + [1] * (t.dim() - 1)
            view[dim] = ps.size
            moved = torch.take_along_dim(t.narrow(dim, ax.start, ps.size), index.view(view), dim=dim)
            if ps.size != t.shape[dim]:
                before = t.narrow(dim, 0, ax.start)
                after = t.narrow(dim, ax.start + ps.size, t.shape[dim] - ax.start - ps.size)
                moved = torch.cat([before, moved, after], dim=dim)
            out[ax.param] = moved
    return out


def apply_permutation(graph: WeightGraph, perms: Mapping[str, torch.Tensor]) -> WeightGraph:
    """The graph of the same networks with their hidden units reordered by ``perms``."""
    params = permute_params(graph.spec, graph.to_params(), perms)
    return WeightGraph.from_params(graph.spec, params, check_finite=False)


def _batched_index(name: str, perm: torch.Tensor, batch: int, size: int) -> torch.Tensor:
    perm = torch.as_tensor(perm)
    if perm.dtype not in (torch.int64, torch.int32):
        raise WeightError(f"permutation {name!r} must be an integer tensor, got {perm.dtype}")
    if perm.dim() == 1 and perm.shape[0] == size:
        perm = perm.expand(batch, -1)
    if perm.shape != (batch, size):
        raise WeightError(f"permutation {name!r} has shape {tuple(perm.shape)}, expected [{size}] or [{batch}, {size}]")
    if not torch.equal(perm.sort(dim=1).values, torch.arange(size, device=perm.device).expand(batch, -1)):
        raise WeightError(f"permutation {name!r} is not a permutation of 0..{size - 1}")
    return perm.long()


def align_to(
    spec: GraphSpec, params: Mapping[str, torch.Tensor], reference: Mapping[str, torch.Tensor], rounds: int = 5
) -> dict[str, torch.Tensor]:
    """Permutations ``{name: [B, size]}`` that reorder each network's hidden units to best match
    ``reference`` (batch of one), to pass to :func:`permute_params`.

    Weight matching (Ainsworth et al., "Git Re-Basin", 2023): coordinate descent over the permutable
    sets, each step a linear assignment that maximizes the inner product between the reference's and
    the network's parameters moving with the set, the other sets held at their current order. A
    network that is a permuted copy of the reference gets its permutation undone exactly."""
    check_params(spec, params, batched=True, check_finite=False)
    batch = next(iter(params.values())).shape[0]
    perms = {p.name: torch.arange(p.size).expand(batch, -1).clone() for p in spec.permutations}
    for _ in range(rounds):
        changed = False
        for ps in spec.permutations:
            others = permute_params(spec, params, {n: q for n, q in perms.items() if n != ps.name})
            score = torch.zeros(batch, ps.size, ps.size, dtype=torch.float64)
            for ax in ps.axes:
                ref, net = (_units(t[ax.param], ax.axis + 1, ax.start, ps.size) for t in (reference, others))
                score += ref @ net.transpose(1, 2)
            for b in range(batch):
                new = torch.as_tensor(linear_sum_assignment(score[b].numpy(), maximize=True)[1])
                changed |= not torch.equal(new, perms[ps.name][b])
                perms[ps.name][b] = new
        if not changed:
            break
    return perms


def _units(t: torch.Tensor, dim: int, start: int, size: int) -> torch.Tensor:
    """``[B, size, rest]``: the slice of ``t`` along ``dim`` moved by a permutation, flattened per unit."""
    t = t.detach()
    t = torch.view_as_real(t) if t.is_complex() else t
    return t.narrow(dim, start, size).movedim(dim, 1).reshape(t.shape[0], size, -1).double()
