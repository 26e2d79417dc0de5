"""weightspace plugin: context-based meta-learning, the rivals the DynaDiff paper compares against.

- ``coda``: CoDA, a linear hypernetwork of a per-environment context (:mod:`weightspace_meta.coda`);
- ``geps``: GEPS, low-rank context modulation of every layer (:mod:`weightspace_meta.geps`).

Both train one shared network with a context per seen environment and adapt to an unseen one by
fitting its context on the observed frames (:mod:`weightspace_meta.methods`), for any registered
architecture: they read only the adapter's parameters and its batched rollout.
"""

from weightspace.hookspecs import Lazy, hookimpl


@hookimpl
def weightspace_methods() -> list[Lazy]:
    return [
        Lazy("coda", "weightspace_meta.methods:Coda"),
        Lazy("geps", "weightspace_meta.methods:Geps"),
    ]
