import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, for `scripts`

from recsim_env.benchmark import registry  # noqa: E402
from recsim_env.benchmark.defaults import policy_spec  # noqa: E402
from scripts import bench_lifetime_slateq as script  # noqa: E402


def test_a_variant_parses_to_typed_slateq_fields_and_registers_an_agent(monkeypatch):
    values = script.parse_variant("gamma=0.95,n_step=10")
    assert values == {"gamma": 0.95, "n_step": 10} and isinstance(values["n_step"], int)
    monkeypatch.setattr(registry, "POLICIES", dict(registry.POLICIES))  # leave the real table alone
    monkeypatch.setattr("recsim_env.benchmark.defaults.POLICIES", registry.POLICIES)
    name = script.register_variant(values)
    assert name == "slateq-gamma0.95-n_step10"
    spec = policy_spec(name)
    assert spec.kind == "agent" and not spec.default  # never in a run that names no policies


def test_a_field_slateq_lacks_is_refused():
    with pytest.raises(SystemExit, match="'gama' is not a SlateQConfig field"):
        script.parse_variant("gama=0.95")


@pytest.mark.parametrize("text", ["n_step=2.5", "gamma=high"])
def test_a_value_of_the_wrong_type_is_refused_naming_the_field(text):
    with pytest.raises(SystemExit, match=r"--variant: (n_step|gamma)=.* is not (an int|a finite float)"):
        script.parse_variant(text)
    with pytest.raises(SystemExit, match="--variant 'gamma': give FIELD=VALUE"):
        script.parse_variant("gamma")


def test_reinforce_variants_parse_its_own_fields_and_register_under_its_name(monkeypatch):
    values = script.parse_variant("gamma=0.99,batch_size=256", "reinforce")
    assert values == {"gamma": 0.99, "batch_size": 256} and isinstance(values["batch_size"], int)
    monkeypatch.setattr(registry, "POLICIES", dict(registry.POLICIES))
    monkeypatch.setattr("recsim_env.benchmark.defaults.POLICIES", registry.POLICIES)
    name = script.register_variant(values, "reinforce")
    assert name == "reinforce-gamma0.99-batch_size256"
    assert policy_spec(name).kind == "agent" and "reinforce" in policy_spec(name).description
    with pytest.raises(SystemExit, match="'n_step' is not a ReinforceConfig field"):  # SlateQ's, not REINFORCE's
        script.parse_variant("n_step=3", "reinforce")
