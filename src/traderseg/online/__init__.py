"""Online decisions: the stream consumer, online state, assignment and the decision tables."""

BATCH_SIZE = 20_000
"""Most fills a read takes (default). A consumer that keeps up reads what has come, fewer;
one behind reads this many, and a larger read spreads each read's and fold's fixed cost
over more fills (about a fifth more fills a second at 20,000 than at 5,000 on the live
benchmark, ``bench/bench_stream_live.py``)."""
