"""The adaptation-method contract: how a method gets one expert per environment of a test split.

A method is what the evaluation compares: the generated experts of a trained run, fine-tuning the
base on a few observed frames, retrieving the nearest zoo expert, One-per-Env, or a third party's
own. Methods are plugins (hook ``weightspace_methods``), looked up by name, so the evaluation, the
bench, its report and its plots never name one. A method::

    from weightspace.evaluate.adaptation import observed_frames
    from weightspace.method import Adapted, Environments, EvaluationOptions, Method

    class Retrain(Method):
        name = "retrain"
        options = ("observed_frames",)        # the evaluation options it reads (recorded in rows)

        def adapt(self, zoo, run, environments, options):
            seed = zoo.manifest["seed"]
            frames = observed_frames(zoo.system(), environments.env_index, options.observed_frames, seed)
            ...
            return Adapted(params, seconds_per_env)

Each method says whether it needs a trained run (``needs_run``: it is evaluated as the method of a
run, e.g. generation; otherwise it needs only the zoo and is one of a matrix's ``baselines``),
whether it is a *reference* (``reference``: it trains on the evaluated environment's own data, so it
is the denominator of the report's ratio column and never the bold best), and whether it fine-tunes
the base on the observed frames (``fine_tunes_observed``: the rival generation is timed against,
which may be asked for a step-budget curve through ``EvaluationOptions.finetune_budgets``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from weightspace.errors import ConfigError

if TYPE_CHECKING:
    from weightspace.graph import Params
    from weightspace.pipeline.run import Run
    from weightspace.zoo import Zoo


RUN_METHOD = "generated"
"""The method a trained run is evaluated with when a matrix or command names none: its own
generated experts (registered by the built-in methods plugin)."""


@dataclass(frozen=True)
class EvaluationOptions:
    """What an evaluation gives every method; each method reads the ones it names in ``options``."""

    observed_frames: int = 4
    """L: frames of one trajectory of each environment that a method may observe."""
    candidates: int = 16
    """Generated candidates per environment (the best on the observed frames is kept)."""
    finetune_steps: int = 100
    """Gradient steps of a fine-tuning method."""
    finetune_lr: float | None = None
    """Learning rate of a fine-tuning method; None: the zoo experts' own."""
    finetune_budgets: tuple[int, ...] = ()
    """Step budgets at which a method that ``fine_tunes_observed`` is also scored out of domain."""

    def __post_init__(self) -> None:
        for name in ("observed_frames", "candidates", "finetune_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.finetune_lr is not None and not self.finetune_lr > 0:
            raise ConfigError(f"finetune_lr must be positive, got {self.finetune_lr!r}")
        if any(not isinstance(b, int) or b < 1 for b in self.finetune_budgets):
            raise ConfigError(f"finetune budgets must be positive step counts; got {list(self.finetune_budgets)}")
        object.__setattr__(self, "finetune_budgets", tuple(self.finetune_budgets))

    def select(self, names: tuple[str, ...]) -> dict[str, Any]:
        """The named options as JSON-able values (for result rows and bench keys)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(names) - known)
        if unknown:
            raise ConfigError(f"unknown evaluation option(s) {', '.join(unknown)}; options: {', '.join(sorted(known))}")
        return {name: list(v) if isinstance(v := getattr(self, name), tuple) else v for name in names}


@dataclass(frozen=True)
class Environments:
    """The environments of one test split, as the dataset holds them."""

    split: str
    """``test_in`` (seen environments, new initial conditions), ``val_out`` (unseen validation
    environments) or ``test_out`` (unseen test environments)."""
    env_index: torch.Tensor
    """``[E]`` indices into the system's environment grid."""
    env_params: torch.Tensor
    """``[E, P]`` the environments' parameters (what an oracle knows; a method should not read them)."""
    trajectories: torch.Tensor
    """``[E, n, T, *state]`` the test trajectories the experts are scored on (never for adaptation)."""


@dataclass(frozen=True)
class Adapted:
    """One expert per environment (stacked ``[E, ...]``) and the adaptation's wall time per environment."""

    params: Params
    seconds_per_env: float
    fields: dict[str, Any] = field(default_factory=dict)
    """Method-specific result-row fields (e.g. generation latency, a fine-tuning curve)."""


class Method(ABC):
    """An adaptation method (see the module docstring). Subclasses set ``name`` and implement ``adapt``."""

    name: ClassVar[str]
    needs_run: ClassVar[bool] = False
    """Evaluated as the method of a trained run (``run`` is given); else it needs only the zoo."""
    reference: ClassVar[bool] = False
    """Trains on the evaluated environment's own data: the report's ratio reference, never bolded."""
    fine_tunes_observed: ClassVar[bool] = False
    """Fine-tunes on the observed frames: the rival whose time generation is compared with."""
    options: ClassVar[tuple[str, ...]] = ()
    """The :class:`EvaluationOptions` fields this method reads: recorded in its rows, keying its bench cells."""

    def label(self, run: Run | None) -> str:
        """The ``method`` of this method's result rows (a run's method is labelled by its run)."""
        return self.name

    @abstractmethod
    def adapt(self, zoo: Zoo, run: Run | None, environments: Environments, options: EvaluationOptions) -> Adapted:
        """One expert per environment of ``environments``, from what the method may see of them."""

    def adapt_splits(
        self, zoo: Zoo, run: Run | None, splits: Sequence[Environments], options: EvaluationOptions
    ) -> list[Adapted]:
        """:meth:`adapt` for each of ``splits``, in order: what the evaluation calls. A method whose
        cost grows little with the number of environments adapted at once (One-per-Env's batched
        training of small experts) may override it to adapt every split together, as long as no
        environment's expert depends on which others it was adapted with."""
        return [self.adapt(zoo, run, environments, options) for environments in splits]
