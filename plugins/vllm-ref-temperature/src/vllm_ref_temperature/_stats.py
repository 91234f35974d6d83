"""Counters the probe checks and the demo read (plain ints: cheap, and safe to read from a thread)."""

STATS = {"instances": 0, "v1_instances": 0, "v2_instances": 0, "scaled_rows": 0}
