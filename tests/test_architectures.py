"""Property tests of the adapter contract for every registered architecture (third-party ones too)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from weightspace.architecture import Prediction
from weightspace.diagnostics import architecture_report
from weightspace.graph import align_to, permute_params, random_permutations
from weightspace.registry import default_registry
from weightspace.testing import check_architecture, config_strategy, random_params
from weightspace.zoo import plan_zoo

ARCHITECTURES = default_registry().names("architectures")


def test_the_built_in_architectures_are_registered():
    assert {"fno", "uno", "wno", "mlp-node"} <= set(ARCHITECTURES)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_contract_holds_for_random_small_configs(name):
    cls = default_registry().get("architectures", name)

    @settings(max_examples=25, deadline=None, derandomize=True)
    @given(config=config_strategy(cls), seed=st.integers(0, 2**16))
    def check(config, seed):
        check_architecture(cls(config), seed=seed)

    check()


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_default_config_is_lossless_and_permutation_invariant(name):
    report = architecture_report(default_registry().architecture(name), seed=0)
    assert report["roundtrip_max_abs_error"] == 0.0
    assert report["roundtrip_bitwise"]
    assert report["permutation_max_abs_error"] < 1e-4
    assert report["output_max_abs"] > 0
    assert report["n_parameters"] == sum(g["n_nodes"] * g["feat_dim"] for g in report["node_groups"])


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_a_wrong_permutation_is_detected(name):
    """The permutation check is not vacuous: permuting only one side of a hidden layer changes outputs."""
    adapter = default_registry().architecture(name)
    spec = adapter.spec
    params = random_params(adapter, 1, seed=0)
    perm = max(spec.permutations, key=lambda p: p.size)
    first = perm.axes[0]
    index = torch.roll(torch.arange(perm.size), 1)
    broken = dict(params)
    broken[first.param] = params[first.param].index_select(first.axis + 1, index)  # without its consumers
    x = adapter.example_input(2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        change = (adapter.functional(params, x) - adapter.functional(broken, x)).abs().max()
    assert change > 1e-3


def test_init_is_reproducible_and_seed_dependent():
    adapter = default_registry().architecture("mlp-node", {"hidden_width": 4})
    a, b, c = adapter.init_params(2, seed=5), adapter.init_params(2, seed=5), adapter.init_params(2, seed=6)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["layers.0.weight"], c["layers.0.weight"])
    assert not torch.equal(a["layers.0.weight"][0], a["layers.0.weight"][1])


def test_declared_predictions():
    registry = default_registry()
    assert registry.get("architectures", "mlp-node").prediction is Prediction.VECTOR_FIELD
    for name in ("fno", "uno", "wno"):
        assert registry.get("architectures", name).prediction is Prediction.ONE_STEP


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_weight_matching_undoes_random_permutations(name):
    """Aligning permuted copies of a network to it recovers the network exactly, for every set of
    hidden units the architecture declares (complex spectral weights included)."""
    adapter = default_registry().architecture(name)
    spec = adapter.spec
    reference = random_params(adapter, 1, seed=0)
    copies = {k: v.expand(3, *v.shape[1:]) for k, v in reference.items()}
    perms = random_permutations(spec, 3, torch.Generator().manual_seed(1))
    shuffled = permute_params(spec, copies, perms)
    aligned = permute_params(spec, shuffled, align_to(spec, shuffled, reference))
    assert all(torch.equal(aligned[k], copies[k]) for k in copies)
    identity = align_to(spec, reference, reference)
    assert all(torch.equal(p[0], torch.arange(p.shape[1])) for p in identity.values())


@pytest.mark.parametrize("name", ["fno", "uno", "wno"])
@pytest.mark.parametrize("profile", ["quick", "paper"])
def test_each_operator_has_a_profile_that_fits_a_grid_system(name, profile):
    """The bench's backbone comparison builds every operator from its profile on lambda-omega's grid."""
    registry = default_registry()
    assert profile in registry.get("architectures", name).profiles
    plan = plan_zoo(registry, "lambda-omega", name, profile)
    adapter = plan.adapter
    assert adapter.config.grid_size == tuple(plan.system.state_shape()[1:])
    x = adapter.example_input(1, torch.Generator().manual_seed(0))
    params = random_params(adapter, 1, seed=0)
    with torch.no_grad():
        assert adapter.functional(params, x).shape == (1, *x.shape)
