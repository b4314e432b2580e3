"""Pure per-call and per-agent state machines and the batch step over them.

No I/O: given the states a batch reads and its events, they return the new states and the
counter deltas to commit. The store commits them; `stream/processing/` does the I/O around it.
"""
