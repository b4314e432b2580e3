"""Property-based tests (hypothesis): invariants that must hold for every range, every batching,
every value, not only for the examples the other tests pick."""
