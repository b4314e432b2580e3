"""Adapters: real dialers' records (Asterisk queue_log and CDR, ...) turned into contract v1 events.

Layer rule (tests/test_layers.py): the mapping modules here are pure (no I/O; a record in,
events out, with an explicit small state); the readers, sinks, checkpoints and metrics live in
`stream/adapters/io/`. Adapters import only the contract, the settings and their own modules.
"""
