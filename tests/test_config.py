from dataclasses import dataclass
from typing import Literal

import pytest

from weightspace.config import config_to_dict, make_config, parse_assignments, require_positive
from weightspace.errors import ConfigError


@dataclass(frozen=True)
class Demo:
    width: int = 4
    rate: float = 0.5
    modes: tuple[int, int] = (8, 8)
    layers: tuple[tuple[int, int], ...] = ((1, 1),)
    flag: bool = True
    kind: Literal["a", "b"] = "a"
    limit: int | None = None

    def __post_init__(self):
        require_positive(self, "width", "modes", "layers")


def test_strings_are_coerced_to_field_types():
    cfg = make_config(
        Demo,
        parse_assignments(
            ["width=16", "rate=1e-3", "modes=6,4", "layers=[[2,3],[4,5]]", "flag=false", "kind=b", "limit=none"]
        ),
    )
    assert cfg == Demo(16, 1e-3, (6, 4), ((2, 3), (4, 5)), False, "b", None)
    assert make_config(Demo, {"limit": "7"}).limit == 7


def test_config_round_trips_through_json_dict():
    cfg = Demo(width=3, modes=(2, 5))
    assert make_config(Demo, config_to_dict(cfg)) == cfg


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"depth": 3}, "unknown config key 'depth' for demo; valid keys: flag, kind, layers"),
        ({"width": "abc"}, "bad value 'abc' for 'width'"),
        ({"width": 2.5}, "expected an integer"),
        ({"modes": "1,2,3"}, "expected 2 items, got 3"),
        ({"kind": "c"}, "expected one of 'a', 'b'"),
        ({"flag": "maybe"}, "expected true or false"),
        ({"width": -1}, "width must be positive"),
        ({"layers": "[[1,2],[0,3]]"}, "layers must be positive, got ((1, 2), (0, 3))"),
        ({"layers": "[1,"}, "not a valid list"),
    ],
)
def test_bad_input_names_the_problem(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_config(Demo, overrides, owner="demo")


def test_assignment_without_equals_is_rejected():
    with pytest.raises(ConfigError, match="expected key=value, got 'width'"):
        parse_assignments(["width"])
