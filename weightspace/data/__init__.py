"""Trajectory data: what every zoo is trained on and every method is scored on.

- :mod:`weightspace.data.dataset`: the HDF5 trajectory format (``docs/data-format.md``).
- :mod:`weightspace.data.simulation`: a system's seeded splits, simulated in chunks.
- :mod:`weightspace.data.trajectories`: splits grouped by environment, per-channel scale, windows.
- :mod:`weightspace.data.gridded`: gridded NetCDF/zarr data imported as a dataset.

Nothing here depends on zoos, runs or evaluation, so data can be built and read on their own.
"""
