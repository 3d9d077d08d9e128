"""Wire a stream run together: source, store, engine, consumer (what ``traderseg stream`` does)."""

from __future__ import annotations

import logging
from pathlib import Path

from traderseg.online import BATCH_SIZE
from traderseg.online.consumer import StreamConfig, StreamConsumer, StreamStats
from traderseg.online.decide import DecisionEngine, Hysteresis, accounts_frame
from traderseg.online.sources import parse_source

logger = logging.getLogger(__name__)


def build_engine(con: object, model: str | Path, policy_path: str | Path, *,
                 predictors: str | Path | None = None,
                 hysteresis: Hysteresis | None = None) -> DecisionEngine:
    """Load the policy (checked against the model) and the models into an engine."""
    from traderseg.policy import check_policy, load_policy, save_policy

    policy = load_policy(policy_path)
    preds = None
    if predictors is not None:
        from traderseg.policy.predict import load_predictors

        preds = load_predictors(predictors)
    engine = DecisionEngine(model, policy, predictors=preds, hysteresis=hysteresis,
                            accounts=accounts_frame(con))
    check_policy(policy, engine.meta)
    save_policy(con, policy, actor="stream")  # type: ignore[arg-type]
    return engine


def run_stream(source: str, db: str | Path, model: str | Path, policy: str | Path, *,
               predictors: str | Path | None = None, decide_every_s: float = 900.0,
               speed: float = 0.0, consumer: str = "consumer-1", group: str = "traderseg",
               claim_idle_ms: int = 30_000, batch_size: int = BATCH_SIZE,
               checkpoint_s: float = 1.0, idle_stop_s: float | None = None,
               margin: float = 0.10, dwell_days: float = 1.0,
               publish: str | None = None) -> StreamStats:
    """Consume ``source`` into the store at ``db`` and return what happened."""
    from traderseg.store import open_store

    src = parse_source(source, speed=speed, group=group, consumer=consumer,
                       claim_idle_ms=claim_idle_ms)
    con = open_store(db)
    try:
        engine = build_engine(con, model, policy, predictors=predictors,
                              hysteresis=Hysteresis(margin, dwell_days))
        cfg = StreamConfig(consumer=consumer, decide_every_s=decide_every_s,
                           batch_size=batch_size, checkpoint_s=checkpoint_s,
                           idle_stop_s=idle_stop_s)
        publisher = None
        if publish is not None:
            from traderseg.online.publish import RedisPublisher

            publisher = RedisPublisher(publish)
        consumer_ = StreamConsumer(con, src, engine, cfg, publish=publisher,
                                   source_label=source)
        return consumer_.run()
    finally:
        src.close()
        con.close()
