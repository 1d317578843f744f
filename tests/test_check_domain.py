"""Domain text for graphc.check: intervals, relations, sampling, and positioned errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from graphc import ParseError, check
from graphc.domain import Interval, as_domain, parse_domain
from graphc.errors import InputError


@pytest.mark.parametrize(
    ("text", "name", "interval"),
    [
        ("x>0", "x", Interval(0.0, None, False, False)),
        ("x >= 1", "x", Interval(1.0, None, True, False)),
        ("0<x<1", "x", Interval(0.0, 1.0, False, False)),
        ("-2 <= x < 3.5", "x", Interval(-2.0, 3.5, True, False)),
        ("x < -1/2", "x", Interval(None, -0.5, False, False)),
        ("1 > x", "x", Interval(None, 1.0, False, False)),
        ("x > 0 and x < 2", "x", Interval(0.0, 2.0, False, False)),
        ("x > 0; x > 1", "x", Interval(1.0, None, False, False)),
        ("x ≥ 2", "x", Interval(2.0, None, True, False)),
    ],
)
def test_intervals(text: str, name: str, interval: Interval) -> None:
    assert parse_domain(text).intervals[name] == interval


def test_several_variables_and_a_relation() -> None:
    d = parse_domain("x > 0, y<0 and x > y + 1")
    assert set(d.intervals) == {"x", "y"}
    assert len(d.relations) == 1
    pts = d.sample(("x", "y", "z"), 100, np.random.default_rng(3))
    assert len(pts["x"]) == 100
    assert (pts["x"] > 0).all() and (pts["y"] < 0).all() and (pts["x"] > pts["y"] + 1).all()
    assert ((pts["z"] >= -3) & (pts["z"] <= 3)).all()


def test_points_lie_strictly_inside_open_intervals() -> None:
    pts = parse_domain("0 < x < 0.01").sample(("x",), 500, np.random.default_rng(0))
    assert ((pts["x"] > 0) & (pts["x"] < 0.01)).all()


def test_python_intervals() -> None:
    d = as_domain({"x": (0, None), "y": (None, 1)})
    assert d.intervals["x"] == Interval(0.0, None)
    pts = d.sample(("x", "y"), 200, np.random.default_rng(1))
    assert (pts["x"] > 0).all() and (pts["y"] < 1).all()
    with pytest.raises(InputError, match="empty"):
        as_domain({"x": (2, 1)})
    with pytest.raises(InputError, match="expected"):
        as_domain({"x": 5})


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("x >> 0", 4),
        ("x > ", 4),
        ("x = 0", 3),
        ("x > 0,, y < 1", 7),
        ("x > (1 +", 9),
        ("0 < 1", 1),
        ("x > 2 and x < 1", 11),
    ],
)
def test_bad_domains_give_positioned_parse_errors(text: str, column: int) -> None:
    with pytest.raises(ParseError) as e:
        parse_domain(text)
    assert e.value.line == 1
    assert e.value.column == column, str(e.value)
    assert "^" in str(e.value)


def test_domain_reaches_the_proof_as_assumptions() -> None:
    # |x|' = 1 only for x > 0; proved with the assumption, wrong on the whole line
    assert check("abs(x)", "x", "1", domain="x>0").verdict == "proved"
    assert check("abs(x)", "x", "1").verdict == "wrong"
    # a shifted bound: max(x, 1)' = 1 for x >= 3 (x = 3 + t, t >= 0)
    assert check("max(x, 1)", "x", "1", domain="x>=3").verdict == "proved"


def test_an_unsatisfiable_relation_is_an_input_error() -> None:
    with pytest.raises(InputError, match="no random point"):
        check("x*y", "x", "y", domain="0<x<1, 0<y<1, x > y + 5")


@pytest.mark.parametrize("domain", ["w > 1e308", "w < -1e308", "w >= 1.5e308", "w > 1e300"])
def test_domains_near_float64s_edge_are_sampled_inside_without_warnings(domain) -> None:
    """A fuzz finding: x > 1e308 drew x = 1e308 itself (1e308 + 6 is 1e308) or inf
    (rounding to 2 decimals overflowed), with a RuntimeWarning."""
    d = as_domain(domain)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w = d.sample(("w",), 200, np.random.default_rng(0))["w"]
        r = check("w*y", "w", "y", domain=domain, points=50)
    assert np.all(np.isfinite(w)) and np.all(d.intervals["w"].contains(w))
    assert len(np.unique(w)) > 100 and r.verdict == "proved"
    with pytest.raises(InputError, match=r"the domain 1\.79769e\+308 < w holds no float64 number"):
        check("w*y", "w", "y", domain="w > 1.7976931348623157e308")


def test_a_tensor_programs_check_draws_every_entry_inside_the_domain() -> None:
    """The domain was ignored for tensor programs: sum(abs(x)) with the claim 1 on x > 0
    was called wrong at a negative entry, a false counterexample."""
    r = check("x: (3,); f = sum(abs(x))", "x", "1", domain="x > 0")
    assert r.ok and r.domain == "0 < x"
    wrong = check("x: (3,); f = sum(log(x))", "x", "2/x", domain="0 < x < 1")
    assert wrong.verdict == "wrong"
    assert all(0 < v < 1 for v in np.ravel(wrong["x"].counterexample["x"]))
    with pytest.raises(InputError, match="the domain names y, not a float input"):
        check("x: (3,); f = sum(abs(x))", "x", "1", domain="y > 0")
    with pytest.raises(InputError, match="not supported for tensor programs"):
        check("x: (3,); w: (3,); f = sum(abs(x) * w)", "x", "w", domain="x > w")
