import logging

import numpy as np
import pandas as pd
import pytest

from traderseg.errors import DataError, SchemaError
from traderseg.segment.preprocess import FeaturePreprocessor


def _frame(n=200, seed=0):
    rng = np.random.default_rng(seed)
    opt = np.where(rng.random(n) < 0.5, rng.random(n), 0.0)
    call = np.where(opt > 0, rng.random(n), np.nan)
    return pd.DataFrame({
        "fill_count__all": rng.integers(1, 1000, n).astype(float),
        "fees_usd__all": rng.normal(0, 100, n),
        "maker_share__all": rng.random(n) * 1.2,  # some values beyond 1 must be clipped
        "option_share__all": opt,
        "call_share__all": call,
    }, index=pd.Index([f"a{i}" for i in range(n)], name="account_id"))


def test_hint_transforms_and_robust_scaling_match_independent_computation():
    X = _frame()
    pre = FeaturePreprocessor(weight_by_family=False, clip=1e9).fit(X)
    Z = pd.DataFrame(pre.transform(X), columns=pre.get_feature_names_out(), index=X.index)

    def robust(v):
        q75, q25 = np.percentile(v, [75, 25])
        return (v - np.median(v)) / (q75 - q25)

    np.testing.assert_allclose(Z["fill_count__all"], robust(np.log1p(X["fill_count__all"])))
    fees = X["fees_usd__all"]
    np.testing.assert_allclose(Z["fees_usd__all"], robust(np.sign(fees) * np.log1p(fees.abs())))
    np.testing.assert_allclose(Z["maker_share__all"], robust(X["maker_share__all"].clip(0, 1)))


def test_option_features_imputed_at_centre_with_indicator_kept():
    X = _frame()
    pre = FeaturePreprocessor(weight_by_family=False).fit(X)
    Z = pd.DataFrame(pre.transform(X), columns=pre.get_feature_names_out(), index=X.index)
    no_opt = X["call_share__all"].isna()
    # imputed at the median of option traders, which is the scaling centre -> exactly 0
    assert (Z.loc[no_opt, "call_share__all"] == 0).all()
    assert "option_share__all" in Z.columns  # option_share is the indicator; nothing added
    assert not any(c.startswith("has_") for c in Z.columns)
    # without option_share an explicit indicator is added
    pre2 = FeaturePreprocessor().fit(X.drop(columns="option_share__all"))
    names = list(pre2.get_feature_names_out())
    assert "has_option__all" in names
    Z2 = pre2.transform(X.drop(columns="option_share__all"))
    ind = Z2[:, names.index("has_option__all")]
    assert len(np.unique(ind[no_opt.to_numpy()])) == 1
    assert ind[no_opt.to_numpy()][0] != ind[~no_opt.to_numpy()][0]


def test_family_weighting_equalises_family_variance():
    X = _frame()
    X["call_share__30d"] = X["call_share__all"]
    X["option_share__30d"] = X["option_share__all"]
    pre = FeaturePreprocessor().fit(X)
    names = list(pre.get_feature_names_out())
    w = dict(zip(names, pre.weights_[pre.keep_], strict=True))
    assert w["call_share__all"] == pytest.approx(1 / np.sqrt(2))  # options: 2 columns
    assert w["fill_count__all"] == pytest.approx(1.0)  # activity: 1 column
    assert w["maker_share__all"] == pytest.approx(1.0)
    assert w["option_share__30d"] == pytest.approx(1 / np.sqrt(2))  # mix: 2 columns


def test_nan_in_plain_column_names_column_and_count():
    X = _frame()
    X.iloc[[3, 7, 9], 0] = np.nan
    with pytest.raises(DataError, match=r"'fill_count__all' has 3 NaN"):
        FeaturePreprocessor().fit(X)


def test_negative_log_feature_is_an_error():
    X = _frame()
    X.iloc[0, 0] = -5
    with pytest.raises(DataError, match="fill_count__all.*1 negative"):
        FeaturePreprocessor().fit(X)


def test_constant_column_dropped_and_recorded(caplog):
    X = _frame()
    X["weekend_share__all"] = 0.3
    with caplog.at_level(logging.WARNING):
        pre = FeaturePreprocessor().fit(X)
    assert pre.dropped_columns_ == ["weekend_share__all"]
    assert "weekend_share__all" not in pre.get_feature_names_out()
    assert "weekend_share__all" in caplog.text


def test_all_constant_columns_is_an_error():
    X = pd.DataFrame({"fill_count__all": [3.0] * 5, "maker_share__all": [0.5] * 5})
    with pytest.raises(DataError, match="constant"):
        FeaturePreprocessor().fit(X)


def test_missing_columns_at_transform_are_named():
    X = _frame()
    pre = FeaturePreprocessor().fit(X)
    with pytest.raises(SchemaError, match="missing columns \\['fees_usd__all'\\]"):
        pre.transform(X.drop(columns="fees_usd__all"))


def test_single_account_is_an_error():
    with pytest.raises(DataError, match="1 sample"):
        FeaturePreprocessor().fit(_frame().iloc[:1])


def test_plain_arrays_are_treated_as_standard():
    rng = np.random.default_rng(0)
    A = rng.lognormal(size=(50, 3))
    pre = FeaturePreprocessor().fit(A)
    assert [s.transform for s in pre.specs_] == ["standard"] * 3
    Z = pre.transform(A)
    q75, q25 = np.percentile(A[:, 0], [75, 25])
    np.testing.assert_allclose(Z[:, 0], np.clip((A[:, 0] - np.median(A[:, 0])) / (q75 - q25), -8, 8))


def _catalogue_frame(windows):
    from traderseg.features.catalog import CATALOG

    cols = [f"{f.name}__{w}" for f in CATALOG for w in windows]
    return pd.DataFrame(np.zeros((2, len(cols))), columns=cols)


def test_segmentation_columns_take_behaviour_of_the_lifetime_window():
    from traderseg.features.catalog import get_feature
    from traderseg.segment.preprocess import SEGMENTATION_FEATURES, segmentation_columns

    cols = segmentation_columns(_catalogue_frame(("7d", "30d", "all")))
    assert cols == [f"{s}__all" for s in SEGMENTATION_FEATURES]
    stems = {c.split("__")[0] for c in cols}
    # outcomes, lifecycle and event columns stay out; every kept stem is in the catalogue
    assert not stems & {"realized_pnl_usd", "win_rate", "fees_usd", "liquidation_count",
                        "liquidation_share", "recency_days", "tenure_days",
                        "event_activity_ratio"}
    assert {get_feature(s).family for s in stems} == {
        "activity", "size", "mix", "options", "risk", "execution"}


def test_segmentation_columns_fall_back_to_the_longest_window():
    from traderseg.segment.preprocess import segmentation_columns

    cols = segmentation_columns(_catalogue_frame(("7d", "90d", "30d")))
    assert {c.split("__")[1] for c in cols} == {"90d"}


def test_segmentation_columns_name_what_is_missing():
    from traderseg.segment.preprocess import segmentation_columns

    frame = _catalogue_frame(("all",)).drop(columns=["maker_share__all"])
    with pytest.raises(SchemaError, match="maker_share__all"):
        segmentation_columns(frame)
    with pytest.raises(SchemaError, match="window"):
        segmentation_columns(pd.DataFrame(columns=["fill_count__weekly"]))


def _coverage_frame():
    # hand-sized: option shares 0, 0.25, 0.5, 1, 1; call shares for the option traders
    return pd.DataFrame({
        "option_share__all": [0.0, 0.25, 0.5, 1.0, 1.0],
        "call_share__all": [np.nan, 0.9, 0.1, 0.5, 0.3],
        "perp_share__all": [1.0, 0.5, 0.25, 0.0, 0.0],
        "future_share__all": [0.0, 0.25, 0.0, 0.0, 0.0],
        "leverage_mean__all": [10.0, 3.0, 20.0, np.nan, np.nan],
    }, index=pd.Index([f"a{i}" for i in range(5)], name="account_id"))


def test_coverage_weighting_scales_a_subset_axis_by_its_share_of_fills():
    X = _coverage_frame()
    plain = FeaturePreprocessor(weight_by_family=False, weight_by_coverage=False, clip=1e9)
    cover = FeaturePreprocessor(weight_by_family=False, clip=1e9)
    Zp = pd.DataFrame(plain.fit_transform(X), columns=plain.get_feature_names_out())
    Zc = pd.DataFrame(cover.fit_transform(X), columns=cover.get_feature_names_out())
    # call shares 0.9, 0.1, 0.5, 0.3 -> imputed 0.4 for a0; all five: 0.4, 0.9, 0.1, 0.5, 0.3
    # median 0.4, IQR 0.5 - 0.3 = 0.2: a1 sits at (0.9 - 0.4) / 0.2 = 2.5 without weighting
    assert Zp.loc[1, "call_share__all"] == pytest.approx(2.5)
    # options are a quarter of a1's fills: a quarter of the way out
    assert Zc.loc[1, "call_share__all"] == pytest.approx(2.5 * 0.25)
    assert Zc.loc[2, "call_share__all"] == pytest.approx(Zp.loc[2, "call_share__all"] * 0.5)
    # a full-time option trader (coverage exactly 1) is unchanged
    assert Zc.loc[3, "call_share__all"] == pytest.approx(Zp.loc[3, "call_share__all"])
    assert Zc.loc[0, "call_share__all"] == 0.0
    # leverage covers perp + future fills: a1 0.75, a2 0.25, a0 1
    lev = "leverage_mean__all"
    assert Zc.loc[1, lev] == pytest.approx(Zp.loc[1, lev] * 0.75)
    assert Zc.loc[2, lev] == pytest.approx(Zp.loc[2, lev] * 0.25)
    assert Zc.loc[0, lev] == pytest.approx(Zp.loc[0, lev])
    # the shares carry the coverage: no indicator column is added
    assert not any(c.startswith("has_") for c in Zc.columns)
    # columns without a subset are untouched
    for c in ("option_share__all", "perp_share__all"):
        np.testing.assert_allclose(Zc[c], Zp[c])


def test_coverage_falls_back_to_the_indicator_when_a_share_is_missing():
    X = _coverage_frame().drop(columns="future_share__all")
    pre = FeaturePreprocessor(weight_by_family=False, clip=1e9)
    Z = pd.DataFrame(pre.fit_transform(X), columns=pre.get_feature_names_out())
    assert "has_leverage__all" in Z.columns
    plain = FeaturePreprocessor(weight_by_family=False, weight_by_coverage=False, clip=1e9)
    Zp = pd.DataFrame(plain.fit_transform(X), columns=plain.get_feature_names_out())
    # coverage 0/1: accounts with a leverage keep their value, the others sit at 0
    np.testing.assert_allclose(Z.loc[:2, "leverage_mean__all"], Zp.loc[:2, "leverage_mean__all"])
    assert (Z.loc[3:, "leverage_mean__all"] == 0).all()



def test_a_model_saved_before_coverage_weighting_predicts_as_trained():
    from traderseg.segment.estimator import TraderSegmenter
    from traderseg.segment.persist import upgrade_model

    X = pd.concat([_coverage_frame()] * 4, ignore_index=True)
    X.index = pd.Index([f"a{i}" for i in range(len(X))], name="account_id")
    X["maker_share__all"] = np.linspace(0, 1, len(X))
    ref = TraderSegmenter(2, random_state=0, weight_by_coverage=False).fit(X)
    old = TraderSegmenter(2, random_state=0, weight_by_coverage=False).fit(X)
    # what a model of the earlier version loads as: no such attribute anywhere
    del old.weight_by_coverage, old.preprocessor_.weight_by_coverage
    loaded = upgrade_model(old)
    assert loaded.get_params()["weight_by_coverage"] is False
    np.testing.assert_array_equal(loaded.preprocessor_.transform(X), ref.preprocessor_.transform(X))
    assert not np.array_equal(
        TraderSegmenter(2, random_state=0).fit(X).preprocessor_.transform(X),
        ref.preprocessor_.transform(X))
