"""User-facing errors.

Everything a user can get wrong (a config key, a plugin name, a tensor shape, a file) raises a
subclass of :class:`WeightspaceError` with a message that names the problem. The CLI prints these
as one line instead of a traceback; anything else reaching the CLI is a bug in weightspace.
"""

from __future__ import annotations


class WeightspaceError(Exception):
    """Base class of errors caused by user input rather than by a bug."""


class ConfigError(WeightspaceError, ValueError):
    """A configuration value or key is invalid."""


class PluginError(WeightspaceError, LookupError):
    """A plugin name is unknown, registered twice, or a plugin breaks its contract."""


class WeightError(WeightspaceError, ValueError):
    """Weights do not match a graph spec: missing or extra names, wrong shapes or dtypes, NaN."""


class StorageError(WeightspaceError, OSError):
    """A file is missing, corrupt, or of the wrong kind."""


class SimulationError(WeightspaceError, RuntimeError):
    """A simulation became unstable (non-finite values, a time step that collapses)."""
