"""``-D shard=i/n`` (support/run/shards.py, shard_model.py): the shards together hold every scenario exactly once,
the split is the same whatever the order it is given, balanced by the measured durations, with the scenarios
that stop the services in shard 1 and the browser's together; and the same holds for the real feature files."""

from pathlib import Path

import pytest
from behave.configuration import Configuration
from behave.parser import parse_file
from behave.runner_util import collect_feature_locations, parse_features
from hypothesis import given
from hypothesis import strategies as st

from support.run.settings import REPO_ROOT, Settings, SettingsError
from support.run.shard_model import keep_only, keep_shard, units_of
from support.run.shards import PINNED_TO_FIRST, ShardError, Unit, assign, load_durations, parse_shard, weights

units_strategy = st.lists(
    st.builds(Unit, key=st.text("abcdef", min_size=1, max_size=6),
              tags=st.frozensets(st.sampled_from(["browser", PINNED_TO_FIRST, "fanout", "slow"]), max_size=2),
              selected=st.booleans()),
    max_size=40, unique_by=lambda unit: unit.key)
durations_strategy = st.dictionaries(st.text("abcdef", min_size=1, max_size=6),
                                     st.floats(0, 60, allow_nan=False), max_size=40)


@pytest.mark.parametrize(("text", "expected"), [("1/1", (1, 1)), ("2/5", (2, 5)), (" 3/3 ", (3, 3))])
def test_a_shard_is_written_i_of_n(text, expected):
    assert parse_shard(text) == expected


@pytest.mark.parametrize("text", ["0/2", "3/2", "2", "a/b", "1/0", "-1/2", "1/2/3", ""])
def test_anything_else_is_refused_naming_what_was_given(text):
    with pytest.raises(ShardError, match="i/n"):
        parse_shard(text)


def test_the_settings_read_the_shard_and_refuse_a_bad_one():
    assert Settings.from_userdata({"shard": "2/3"}).shard == (2, 3)
    assert Settings.from_userdata({}).shard is None
    with pytest.raises(SettingsError, match="-D shard"):
        Settings.from_userdata({"shard": "4/3"})


@given(units_strategy, st.integers(1, 6), durations_strategy, st.randoms())
def test_every_unit_is_in_exactly_one_shard_whatever_the_order(units, count, durations, rng):
    shards = assign(units, count, durations)
    assert len(shards) == count
    assert sorted(key for shard in shards for key in shard) == sorted(unit.key for unit in units)
    shuffled = list(units)
    rng.shuffle(shuffled)
    assert assign(shuffled, count, durations) == shards


@given(units_strategy, st.integers(1, 6), durations_strategy)
def test_service_control_goes_to_shard_one_and_the_browser_stays_together(units, count, durations):
    shards = assign(units, count, durations)
    where = {key: index for index, shard in enumerate(shards) for key in shard}
    assert all(where[unit.key] == 0 for unit in units if PINNED_TO_FIRST in unit.tags)
    browser = {where[unit.key] for unit in units if "browser" in unit.tags and PINNED_TO_FIRST not in unit.tags}
    assert len(browser) <= 1


@given(st.lists(st.floats(0.01, 60, allow_nan=False), min_size=1, max_size=40), st.integers(1, 6))
def test_greedy_longest_first_keeps_the_shards_within_one_scenario_of_each_other(seconds, count):
    units = [Unit(f"u{index:02}") for index in range(len(seconds))]
    durations = {unit.key: value for unit, value in zip(units, seconds, strict=True)}
    loads = [sum(durations[key] for key in shard) for shard in assign(units, count, durations)]
    assert max(loads) - min(loads) <= max(seconds) + 1e-9


def test_an_unmeasured_scenario_weighs_the_median_and_an_unselected_one_nothing():
    units = [Unit("a"), Unit("new"), Unit("b", selected=False)]
    assert weights(units, {"a": 1.0, "b": 5.0, "c": 3.0}) == {"a": 1.0, "new": 3.0, "b": 0.0}


def test_the_heaviest_scenario_runs_alone_when_it_outweighs_the_rest():
    units = [Unit("long"), Unit("a"), Unit("b"), Unit("c")]
    assert assign(units, 2, {"long": 10.0, "a": 1.0, "b": 1.0, "c": 1.0}) == [["long"], ["a", "b", "c"]]


def test_two_scenarios_with_one_key_cannot_be_split():
    with pytest.raises(ValueError, match="same key"):
        assign([Unit("a"), Unit("a")], 2, {})


def test_a_missing_durations_file_weighs_every_scenario_alike(tmp_path):
    assert load_durations(tmp_path / "none.json") == {}
    assert weights([Unit("a")], {}) == {"a": 1.0}


FEATURE = """\
Feature: Sample
  Scenario: One
    Given a step
  @browser
  Scenario: Two
    Given a step
  Scenario Outline: Three <n>
    Given a step
    Examples:
      | n |
      | 1 |
      | 2 |
"""


def test_keeping_a_shard_removes_the_other_units_from_both_of_behaves_lists(tmp_path: Path):
    path = tmp_path / "sample.feature"
    path.write_text(FEATURE)
    features = [parse_file(str(path))]
    config = Configuration(command_args=[], load_config=False)
    units = units_of(features, config)
    assert [unit.key.split("::")[1] for unit, _ in units] == ["One", "Two", "Three <n>"]
    keep_only(features, {id(item) for unit, item in units if unit.key.endswith("Three <n>")})
    [feature] = features
    assert [item.name for item in feature.run_items] == [item.name for item in feature.scenarios] == ["Three <n>"]
    keep_only(features, set())
    assert features == []


def test_two_shards_of_a_feature_run_its_scenarios_once_between_them(tmp_path: Path):
    path = tmp_path / "sample.feature"
    path.write_text(FEATURE)
    config = Configuration(command_args=[], load_config=False)
    ran = []
    for index in (1, 2):
        features = [parse_file(str(path))]
        line = keep_shard(features, config, index, 2, {})
        assert line.startswith(f"shard {index}/2: ") and "of 3 scenarios" in line
        ran += [item.name for feature in features for item in feature.run_items]
    assert sorted(ran) == ["One", "Three <n>", "Two"]


def _real_units(*args):
    config = Configuration(command_args=list(args))
    features = parse_features(collect_feature_locations([str(REPO_ROOT / "features")]), language=config.lang)
    return [unit for unit, _ in units_of(features, config)]


@pytest.mark.parametrize("selection", [(), ("--tags=@load or not @load",)])
@pytest.mark.parametrize("count", [2, 3, 5])
def test_the_real_features_split_into_shards_holding_each_scenario_once(selection, count):
    units = _real_units(*selection)
    assert len({unit.key for unit in units}) == len(units), "two scenarios of one feature share a name"
    shards = assign(units, count, load_durations())
    assert sorted(key for shard in shards for key in shard) == sorted(unit.key for unit in units)
    assert all(shards), "a shard with nothing to run"


RULES = """\
Feature: Rules
  Rule: First
    Scenario: A
      Given a step
  Rule: Second
    Scenario: B
      Given a step
"""


def test_a_rule_left_without_scenarios_goes_too(tmp_path: Path):
    path = tmp_path / "rules.feature"
    path.write_text(RULES)
    features = [parse_file(str(path))]
    units = units_of(features, Configuration(command_args=[], load_config=False))
    assert [unit.key.split("::")[1] for unit, _ in units] == ["A", "B"]
    keep_only(features, {id(item) for unit, item in units if unit.key.endswith("::B")})
    assert [rule.name for rule in features[0].run_items] == ["Second"]


def test_an_outline_whose_examples_need_service_control_goes_to_the_first_shard(tmp_path):
    """The tag on an ``Examples`` block counts: its rows stop the services, which only worker 1 may do."""
    from support.run.shard_model import unit_tags

    path = tmp_path / "rows.feature"
    path.write_text("Feature: Rows\n  @outline\n  Scenario Outline: Trouble <n>\n    Given a step\n\n"
                    "    Examples: calm\n      | n |\n      | 1 |\n\n"
                    "    @needs-service-control\n    Examples: restarts\n      | n |\n      | 2 |\n")
    (outline,) = parse_file(str(path)).run_items
    assert unit_tags(outline) == {"outline", "needs-service-control"}
