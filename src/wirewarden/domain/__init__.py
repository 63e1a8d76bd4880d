"""Pure domain code: no I/O, imports nothing of ours but domain."""
