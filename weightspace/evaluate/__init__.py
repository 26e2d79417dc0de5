"""Evaluating experts and the methods that produce them, kept apart from building them.

- :mod:`weightspace.evaluate.evaluation`: rollouts of each method's experts on the test splits,
  summarised as result rows.
- :mod:`weightspace.evaluate.adaptation`: what adaptation methods share (observed frames, an
  environment's own trajectories, fine-tuning the zoo's base expert).
- :mod:`weightspace.evaluate.memorization`: whether generated experts are copies of zoo experts.
- :mod:`weightspace.evaluate.distill`: the equations a vector-field expert encodes (SINDy).
"""
