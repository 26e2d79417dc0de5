"""The domain-adaptive model zoo: its settings and plan, its builder, the expert trainer and the
loaded :class:`Zoo` with its on-disk format.

- :mod:`weightspace.zoo.zoo`: ``plan_zoo``, ``build_zoo`` and ``Zoo`` (``docs/zoo-format.md``).
- :mod:`weightspace.zoo.trainer`: ``train_experts``, many experts trained as one stacked tensor.

The names below are those ``weightspace.zoo`` had as a module, so ``from weightspace.zoo import
Zoo`` keeps working.
"""

from weightspace.progress import ZooProgress
from weightspace.zoo.zoo import (
    FORMAT,
    FORMAT_VERSION,
    PROFILES,
    TrainingError,
    Zoo,
    ZooPlan,
    ZooSettings,
    build_zoo,
    check_input_fits,
    perturb_layer,
    plan_zoo,
    sha256,
    train_chunk,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "PROFILES",
    "TrainingError",
    "Zoo",
    "ZooPlan",
    "ZooProgress",
    "ZooSettings",
    "build_zoo",
    "check_input_fits",
    "perturb_layer",
    "plan_zoo",
    "sha256",
    "train_chunk",
]
