"""The limits a batch job's supervisor holds each member to (engine/runner.py): a time
limit per observation and the job's memory. A member past either is stopped and gets a
flagged row (TIMEOUT, OUT_OF_MEMORY); the batch goes on. Also how much work the worker
is handed at once, which decides how much a lost worker costs.

The time limit is the config's ``time_limit_per_obs_s`` (per analysis, else global) when
set. Otherwise it comes from the time per observation: measured on earlier batches (what
auto sizing records, engine/plan/sizing.py), else declared (the config's or the analysis's
``runtime_per_obs_s``), times FACTOR, and never below FLOOR_S for a chunk: generous, so
that only a member stuck far beyond its peers is stopped."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

FACTOR = 20.0
FLOOR_S = 60.0
# Members handed to the worker at once: about CHUNK_S of work, at most CHUNK_MAX.
CHUNK_S = 0.5
CHUNK_MAX = 256


@dataclass(frozen=True)
class TimeLimit:
    per_obs_s: float
    floor_s: float
    why: str  # where it comes from, for the log and the flagged row

    def window(self, n: int) -> float:
        """Seconds a chunk of ``n`` members may take, reading included."""
        return max(self.floor_s, self.per_obs_s * n)

    def __str__(self) -> str:
        if self.floor_s:
            floor = f"at least {self.floor_s:g} s a chunk"
            return f"{self.per_obs_s:.3g} s per observation, {floor} ({self.why})"
        return f"{self.per_obs_s:g} s per observation ({self.why})"


def configured_time_limit(config: Mapping, analysis: str) -> tuple[float | None, str]:
    """(seconds, config key) of an explicit time limit per observation, or (None, "")."""
    own = config.get("analyses", {}).get(analysis, {}).get("time_limit_per_obs_s")
    if own is not None:
        return float(own), f"config analyses.{analysis}.time_limit_per_obs_s"
    everyone = config.get("time_limit_per_obs_s")
    if everyone is not None:
        return float(everyone), "config time_limit_per_obs_s"
    return None, ""


def time_limit(
    configured: float | None, configured_where: str, expected_s: float, expected_why: str
) -> TimeLimit:
    """The configured limit, else FACTOR times the expected time per observation."""
    if configured is not None:
        return TimeLimit(configured, 0.0, configured_where)
    return TimeLimit(
        FACTOR * expected_s,
        FLOOR_S,
        f"{FACTOR:g} x {expected_s:.3g} s per observation, {expected_why}",
    )


def chunk_members(chunk_size: int, per_obs_s: float) -> int:
    """How many members the worker is handed at once: about CHUNK_S seconds of work (at
    most CHUNK_MAX), a whole number of the analysis's chunk_size. Cheap members then cost
    one message, journal note and read-ahead per chunk, not each; an expensive member
    is a chunk of its own, so a SIGTERM or a crash loses little finished work, and a
    hang is caught after its own time limit, not a chunk's."""
    step = max(1, chunk_size)
    wanted = min(CHUNK_MAX, int(CHUNK_S / per_obs_s)) if per_obs_s > 0 else CHUNK_MAX
    return step * max(1, -(-wanted // step))
