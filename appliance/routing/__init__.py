"""The pure routing core: call context and state snapshot in, a typed plan out.

Nothing here does I/O except `snapshot.load_snapshot` (one read of the database); "now"
is an input and there are no timers. The runner that executes plans against the engine
lives elsewhere and is the only place with timers.
"""
