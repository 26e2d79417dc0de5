"""Is an environment inside what the zoo and the generator know? Two shift scores for a generated expert,
from what generation already computes, and the measures that say how well they detect shift.

- ``range`` (``Generated.range_score``, computed by every generation): how far outside the seen
  environments' parameter range the prompter places the environment. Every prompter regresses the
  environment's parameters from its condition (its ``aux`` head), in the units where the seen range
  is [-1, 1]; the score is the largest ``|estimate|`` over parameters, so above 1 means "outside
  the range the zoo covers". It needs no reference.
- ``residual``: how badly the chosen candidate reproduces the observed frames, ranked among the
  same run's generated experts on the seen environments' observed frames (the ``test_in`` stream):
  the fraction of seen environments that are fitted better (ties count half). 1 means worse than
  on every seen environment. The reference costs one generation per seen environment.

Each score comes with a flag (``range`` > :data:`RANGE_FLAG`, ``residual`` > :data:`RESIDUAL_FLAG`). How well a score
separates environments inside the seen parameter range from those outside (AUROC) and how it tracks
the expert's error (Spearman correlation) is measured by ``benchmarks/shift_detection.py`` on
validation and test environments, never on the seen ones a reference is built from.
"""

from __future__ import annotations

import torch

from weightspace.evaluate.adaptation import generate_split
from weightspace.evaluate.evaluation import split_environments
from weightspace.pipeline.run import Run

RESIDUAL_FLAG = 0.95
"""A ``residual`` score above this (worse than 95% of seen environments) raises its flag."""
RANGE_FLAG = 1.0
"""A ``range`` score above this (outside the seen range) raises its flag."""


def seen_residuals(run: Run, length: int, candidates: int) -> torch.Tensor:
    """The residuals ``[S]`` of the run's generated experts on each seen environment's observed frames
    (best of ``candidates``, generated as evaluation generates ``test_in``): the ``residual`` score's reference."""
    return generate_split(run, split_environments(run.zoo, "test_in"), length, candidates).residual


def residual_score(residual: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """The ``residual`` score ``[E]`` of residuals ``[E]`` against the seen ones ``[S]``."""
    below = (reference[None, :] < residual[:, None]).double().mean(dim=1)
    equal = (reference[None, :] == residual[:, None]).double().mean(dim=1)
    return (below + equal / 2).float()


def auroc(score: torch.Tensor, positive: torch.Tensor) -> float | None:
    """The area under the ROC curve of ``score`` for telling ``positive`` items from the rest
    (the probability that a positive scores above a negative, ties half); None without both kinds."""
    pos, neg = score[positive], score[~positive]
    if not len(pos) or not len(neg):
        return None
    return float(residual_score(pos, neg).mean())


def spearman(a: torch.Tensor, b: torch.Tensor) -> float | None:
    """Spearman's rank correlation of two samples (scipy's: average ranks for ties); None under 3
    items or when a sample is constant (no ranking to correlate)."""
    if len(a) < 3 or bool((a == a[0]).all()) or bool((b == b[0]).all()):
        return None
    from scipy.stats import spearmanr

    return float(spearmanr(a.double().numpy(), b.double().numpy()).statistic)


def inside_hull(points: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """Whether each point ``[E, P]`` lies in the convex hull of the seen environments' parameters
    ``[S, P]`` (an interval for one parameter); what "inside the seen parameter range" means here.
    Seen environments that span no hull of full dimension (too few, or on one line) give their
    bounding box instead."""
    in_box = ((points >= seen.amin(dim=0)) & (points <= seen.amax(dim=0))).all(dim=1)
    if seen.shape[1] == 1:
        return in_box
    from scipy.spatial import Delaunay, QhullError

    try:
        hull = Delaunay(seen.double().numpy())
    except QhullError:
        return in_box
    return torch.from_numpy(hull.find_simplex(points.double().numpy()) >= 0)
