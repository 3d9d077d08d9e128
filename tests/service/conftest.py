"""Two small venues served by one app, keys of every role, and controls decided in batch.

Venue ``alpha`` is a simulated venue (fitted mid-way); venue ``beta`` holds a few of the
same traders under other account ids (``beta-...``), assigned by alpha's model, served
from a model registry (version ``v1``, the champion). Every
account of alpha has controls decided by a batch run, so overrides and the audit log have
something to act on.
"""

import shutil

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from helpers.store import simulated_store
from traderseg.ingest import ingest
from traderseg.online.book import build_book
from traderseg.online.tables import write_decisions
from traderseg.segment.registry import ModelRegistry
from traderseg.segment.workflow import fit_segments
from traderseg.service import ServiceSettings, VenueStore, create_app
from traderseg.service.keys import ROLES, KeyStore
from traderseg.store import connect

FIT_AS_OF = "2024-02-01"
BETA_ACCOUNTS = 40
DEFAULTS = {"max_leverage": 20.0, "position_limit_usd": 1_000_000.0, "margin_multiplier": 1.0,
            "allowed_products": "spot,perp,future,option", "option_writing": True,
            "review_flag": False, "marketing_eligible": True}
NOT_MARKETABLE = 3
"""Accounts of alpha (the first, by id) whose marketing eligibility the batch withdrew."""


def batch_controls(book):
    """A batch decision for every account of ``book``: the defaults above."""
    acc = book.accounts.reset_index()
    frame = pd.DataFrame({
        "account_id": acc["account_id"], "segment_id": acc["segment"],
        "segment_name": acc["segment_name"], "membership": acc["membership"],
        "lifecycle_stage": acc["lifecycle_stage"], "value_tier": acc["value_tier"],
        "risk_score": acc["risk_score"], "kyc_tier": None, "region": None,
        "churn_probability": acc["churn_probability"], "liquidation_risk": None,
        **{k: v for k, v in DEFAULTS.items()}, "review_reason": None,
        "rules": "{}", "policy_version": "test-1", "model_version": book.model_version,
        "as_of": book.as_of, "fill_id": None, "updated_at": pd.Timestamp.now(tz="UTC"),
    })
    frame = frame.sort_values("account_id").reset_index(drop=True)
    frame.loc[: NOT_MARKETABLE - 1, "marketing_eligible"] = False
    return frame


@pytest.fixture(scope="session")
def venues(tmp_path_factory):
    root = tmp_path_factory.mktemp("service")
    alpha = simulated_store(root, accounts=120, days=35, seed=11, name="alpha.duckdb")
    fit_segments(alpha, FIT_AS_OF, root / "model", random_state=0)
    fills = pd.read_parquet(root / "sim" / "fills")
    keep = sorted(fills["account_id"].unique())[:BETA_ACCOUNTS]
    beta_fills = fills[fills["account_id"].isin(keep)].copy()
    beta_fills["account_id"] = "beta-" + beta_fills["account_id"]
    beta_fills["fill_id"] = "beta-" + beta_fills["fill_id"]
    (root / "beta-src").mkdir()
    beta_fills.to_parquet(root / "beta-src" / "fills.parquet", index=False)
    beta = root / "beta.duckdb"
    ingest([root / "beta-src"], beta)
    con = connect(alpha)
    try:
        decided = batch_controls(build_book(con, root / "model"))
        write_decisions(con, decided, actor="batch")
    finally:
        con.close()
    # beta is served from a model registry whose champion is alpha's model
    registry = ModelRegistry(root / "registry")
    registry.register(root / "model")
    registry.promote("v1")
    # untouched copies for the tests that write freely (the schema fuzzing)
    (root / "pristine").mkdir()
    for path in (alpha, beta):
        shutil.copy(path, root / "pristine" / path.name)
    return {"root": root, "alpha": alpha, "beta": beta, "model": root / "model",
            "alpha_ids": decided["account_id"].tolist(), "registry": root / "registry"}


@pytest.fixture(scope="session")
def keys(venues):
    store = KeyStore(venues["root"] / "keys.json")
    out = {role: store.create(role, "alpha")[1] for role in ROLES}
    out["beta-admin"] = store.create("admin", "beta")[1]
    out["nowhere"] = store.create("admin", "gamma")[1]
    return out


@pytest.fixture(scope="session")
def settings(venues):
    return ServiceSettings(
        venues={"alpha": VenueStore(db=venues["alpha"], model=venues["model"]),
                "beta": VenueStore(db=venues["beta"], model=venues["registry"])},
        keys_file=venues["root"] / "keys.json")


@pytest.fixture(scope="session")
def client(settings, keys):
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="session")
def alpha_ids(venues):
    """Accounts of alpha, by id (all have controls; the first NOT_MARKETABLE are not marketable)."""
    return venues["alpha_ids"]


def auth(token):
    return {"Authorization": f"Bearer {token}"}
