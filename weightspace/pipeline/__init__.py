"""The weight-generation pipeline: a run config, its stages planned and built, the trained run.

- :mod:`weightspace.pipeline.config`: ``RunConfig`` and TOML configs that extend one another.
- :mod:`weightspace.pipeline.stages`: ``plan_run`` keys the stages (zoo, encoder, generator) by
  content; ``build_stage`` and ``train_run`` build what is missing.
- :mod:`weightspace.pipeline.run`: ``Run``, a trained run loaded, with ``run.generate(...)``.
"""

from weightspace.pipeline.config import RunConfig
from weightspace.pipeline.run import STAGES, Run
from weightspace.pipeline.stages import RunPlan, build_stage, plan_run, train_run

__all__ = ["STAGES", "Run", "RunConfig", "RunPlan", "build_stage", "plan_run", "train_run"]
