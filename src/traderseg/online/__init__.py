"""Online decisions: the stream consumer, online state, assignment and the decision tables."""
