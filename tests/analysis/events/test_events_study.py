import numpy as np
import pandas as pd
import pytest
from scipy import stats

from traderseg.analysis.events import abnormal_by_event, event_study
from traderseg.errors import ConfigError, DataError, SchemaError

DAYS = pd.date_range("2021-01-01", periods=3 * 365, freq="D", tz="UTC")
EVENT_POS = list(range(80, 3 * 365 - 20, 75))  # 14 events, estimation windows clean
JUMP = {0: 0.8, 1: 0.4}  # log jump of the reacting segment on days 0 and +1


def _activity(seed=11):
    rng = np.random.default_rng(seed)
    rows = []
    for seg in ("reacts", "ignores"):
        log_x = rng.normal(12.0, 0.25, len(DAYS))
        if seg == "reacts":
            for p in EVENT_POS:
                for k, j in JUMP.items():
                    log_x[p + k] += j
        rows.append(pd.DataFrame({"segment": seg, "ts": DAYS, "notional_usd": np.exp(log_x)}))
    return pd.concat(rows, ignore_index=True)


def _events(extra=()):
    return pd.DataFrame({"ts": [DAYS[p] for p in EVENT_POS] + list(extra)})


@pytest.fixture(scope="module")
def activity():
    return _activity()


def test_injected_reaction_is_recovered_and_a_calm_segment_is_not(activity):
    st = event_study(activity, _events()).set_index(["segment", "rel_day"])
    r0 = st.loc[("reacts", 0)]
    assert r0["n_events"] == len(EVENT_POS)
    assert r0["ci_low"] > 0 and r0["ci_low"] <= JUMP[0] <= r0["ci_high"]
    r1 = st.loc[("reacts", 1)]
    assert r1["ci_low"] > 0 and r1["ci_low"] <= JUMP[1] <= r1["ci_high"]
    assert st.loc[("reacts", 5), "car_ci_low"] > 0
    calm = st.loc[("ignores", 0)]
    assert calm["ci_low"] <= 0 <= calm["ci_high"]
    calm_car = st.loc[("ignores", 5)]
    assert calm_car["car_ci_low"] <= 0 <= calm_car["car_ci_high"]
    pre = st.loc[("reacts", -2)]
    assert pre["ci_low"] <= 0 <= pre["ci_high"]


def test_interval_covers_zero_about_95_percent_of_the_time_without_a_reaction():
    covered = []
    for seed in range(100):
        act = _activity(seed)
        act = act[act.segment == "ignores"]
        st = event_study(act, _events(), window=(0, 0))
        covered.append(bool(st["ci_low"].iloc[0] <= 0 <= st["ci_high"].iloc[0]))
    assert 88 <= sum(covered) <= 100


def test_abnormal_values_and_interval_match_a_hand_computation(activity):
    st = event_study(activity, _events(), window=(-3, 3), estimation=(-40, -5))
    ab, excluded = abnormal_by_event(activity, _events(), (-3, 3), (-40, -5))
    assert excluded.empty
    x = activity[activity.segment == "reacts"].set_index("ts")["notional_usd"]
    per_event = []
    for p in EVENT_POS:
        base = np.log1p(x.iloc[p - 40 : p - 4]).mean()
        per_event.append(np.log1p(x.iloc[p]) - base)
    got = ab[(ab.segment == "reacts") & (ab.rel_day == 0)].sort_values("event_ts")["abnormal"]
    np.testing.assert_allclose(got, per_event, rtol=1e-12)
    row = st[(st.segment == "reacts") & (st.rel_day == 0)].iloc[0]
    lo, hi = stats.t.interval(0.95, len(per_event) - 1, loc=np.mean(per_event),
                              scale=stats.sem(per_event))
    assert row["ci_low"] == pytest.approx(lo) and row["ci_high"] == pytest.approx(hi)
    assert row["p_value"] == pytest.approx(stats.ttest_1samp(per_event, 0).pvalue)
    cars = ab[ab.segment == "reacts"].pivot(index="event_ts", columns="rel_day",
                                            values="abnormal").loc[:, -3:1].sum(axis=1)
    assert st[(st.segment == "reacts") & (st.rel_day == 1)]["car"].iloc[0] == pytest.approx(
        cars.mean())


def test_events_falling_off_the_data_are_excluded_and_counted(activity):
    extra = [DAYS[10], DAYS[-3], DAYS[EVENT_POS[0]]]  # too early, too late, a repeat
    st = event_study(activity, _events(extra))
    assert st.attrs["n_events"] == len(EVENT_POS)
    assert st.attrs["n_excluded"] == 2
    assert st.attrs["n_duplicate_days"] == 1
    reasons = {e["event_ts"][:10]: e["reason"] for e in st.attrs["excluded"]}
    assert set(reasons) == {str(DAYS[10].date()), str(DAYS[-3].date())}
    assert "activity covers" in reasons[str(DAYS[10].date())]


def test_bootstrap_and_ratio_agree_with_the_injection(activity):
    st = event_study(activity, _events(), method="bootstrap", n_boot=500, random_state=0)
    st = st.set_index(["segment", "rel_day"])
    assert st.loc[("reacts", 0), "ci_low"] > 0
    assert st.loc[("ignores", 0), "ci_low"] <= 0 <= st.loc[("ignores", 0), "ci_high"]
    ratio = event_study(activity, _events(), transform="ratio").set_index(["segment", "rel_day"])
    r0 = ratio.loc[("reacts", 0)]
    # exp(0.8) - 1 = 1.23 times the estimation mean, which itself carries the lognormal
    # mean factor exp(0.25**2 / 2) ~ 1.03.
    assert r0["ci_low"] <= np.exp(0.8) / np.exp(0.25**2 / 2) - 1 <= r0["ci_high"]


def test_signed_metric_needs_the_diff_transform(activity):
    act = activity.assign(net_delta_usd=activity["notional_usd"] - 160_000)
    with pytest.raises(DataError, match="negative"):
        event_study(act, _events(), metric="net_delta_usd")
    st = event_study(act, _events(), metric="net_delta_usd", transform="diff")
    assert st.attrs["transform"] == "diff"


def test_bad_inputs_are_refused(activity):
    with pytest.raises(DataError, match="span 66 days but the activity covers only 30"):
        event_study(activity[activity.ts < DAYS[30]], _events())
    with pytest.raises(ConfigError, match="must end before"):
        event_study(activity, _events(), window=(-5, 5), estimation=(-30, -5))
    with pytest.raises(ConfigError):
        event_study(activity, _events(), window=(5, -5))
    with pytest.raises(DataError, match="empty"):
        event_study(activity.iloc[:0], _events())
    with pytest.raises(SchemaError, match="fills"):
        event_study(activity, _events(), metric="fills")
    with pytest.raises(DataError, match="no events"):
        event_study(activity, _events().iloc[:0])
    with pytest.raises(SchemaError, match="ts"):
        event_study(activity, pd.DataFrame({"day": [DAYS[100]]}))
    with pytest.raises(DataError, match="daily"):
        event_study(activity.assign(ts=activity.ts + pd.Timedelta(hours=3)), _events())
    with pytest.raises(DataError, match="full window"):
        event_study(activity, pd.DataFrame({"ts": [DAYS[3]]}))
    with pytest.raises(ConfigError, match="method"):
        event_study(activity, _events(), method="magic")
