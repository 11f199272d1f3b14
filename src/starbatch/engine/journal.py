"""The journal of a running batch: finished members, appended as JSON lines to a file
beside the batch's output, so a batch killed at member 9,999 of 10,000 (kill -9, a lost
node, SLURM's TIMEOUT) resumes there instead of starting again.

Snakemake deletes a failed job's outputs but not this file. The first line names the
plan it belongs to (a digest of the batch's members and significant parameters, the
analysis version and the model files); a journal of another plan, or one that cannot be
read, is ignored with a warning, never trusted. A line cut short by a kill is dropped.
The journal goes away once the batch table is written.

Besides the finished members (written in bulk every few seconds), it holds:

- ``{"attempt": k, "died": {member: n}}`` at the start of each run of the batch;
- ``{"in_hand": [member, ...]}``, written the moment the supervisor hands a chunk of
  members to the analysis, so that a run killed as a whole leaves the chunk it was on;
  ``{"in_hand": []}`` when a run stops for a reason that is no member's (SIGTERM, a
  failed set-up).

A member in the last chunk of a run that ended without finishing it *died* with that
run. A member that died with one run is analysed alone in the next; a member that died
with two is flagged CRASHED instead of analysed a third time (engine/runner.py)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import write_atomic
from .jsonvalues import jsonable

log = logging.getLogger("starbatch")
FORMAT = "starbatch-journal-2"


def plan_digest(plan: dict) -> str:
    keep = {k: plan[k] for k in ("batch", "analysis", "params", "members")}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()


def journal_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(f".{output.name}.journal")


def member_entry(index: int, path: str, outcome, insignificant: dict | None = None) -> dict:
    """A finished member as the journal holds it (``outcome``: a batch_table.Outcome;
    ``insignificant``: the parameters it ran with that did not decide its batch)."""
    return {
        "i": index,
        "path": path,
        "insignificant": {k: jsonable(v) for k, v in (insignificant or {}).items()},
        "result": {k: jsonable(v) for k, v in outcome.result.items()},
        "flag": int(outcome.flag),
        "error": outcome.error,
        "seconds": float(outcome.seconds),
        "input": {k: jsonable(v) for k, v in outcome.input.items()},
    }


@dataclass
class Past:
    """What earlier runs of the batch left: finished members, and how many runs died
    with each unfinished member in hand."""

    records: dict[int, dict] = field(default_factory=dict)
    died: dict[int, int] = field(default_factory=dict)
    attempts: int = 0


class Journal:
    def __init__(self, path: str | Path, digest: str):
        self.path = Path(path)
        self.digest = digest
        self.pending: list[str] = []
        self._fh = None

    def read(self) -> Past:
        """What an earlier run left; nothing when there is no journal, or it belongs to
        another plan or is damaged (then it is set aside)."""
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return Past()
        except (OSError, UnicodeDecodeError) as exc:
            return self._distrust(f"unreadable ({exc})")
        try:
            header = json.loads(lines[0]) if lines else {}
        except ValueError:
            header = {}
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            return self._distrust("not a starbatch journal")
        if header.get("plan") != self.digest:
            return self._distrust(
                "written for another plan of this batch (its members, the analysis version "
                "or a model file changed)"
            )
        past, running = Past(), []
        for number, line in enumerate(lines[1:], start=2):
            try:
                entry = json.loads(line)
                if "i" in entry:
                    past.records[int(entry["i"])] = entry
                elif "in_hand" in entry:
                    running = [int(i) for i in entry["in_hand"]]
                elif "attempt" in entry:
                    past.attempts = int(entry["attempt"])
                    past.died = {int(i): int(n) for i, n in entry["died"].items()}
                    running = []
            except (ValueError, KeyError, TypeError, AttributeError):
                log.warning("journal %s: line %d is cut short; dropped", self.path, number)
                break  # only the last line can be partial (appends are sequential)
        for i in running:  # the chunk the last run was on when it ended
            if i not in past.records:
                past.died[i] = past.died.get(i, 0) + 1
        return past

    def _distrust(self, why: str) -> Past:
        log.warning("journal %s ignored: %s", self.path, why)
        self.path.unlink(missing_ok=True)
        return Past()

    def start(self, done: dict[int, dict], died: dict[int, int], attempt: int) -> None:
        """Begin (or rewrite) the journal holding ``done``, for run number ``attempt``."""
        lines = [json.dumps({"format": FORMAT, "plan": self.digest})]
        lines += [json.dumps(r) for _, r in sorted(done.items())]
        lines.append(json.dumps({"attempt": attempt, "died": died}))
        write_atomic(self.path, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))
        self._fh = open(self.path, "ab", buffering=0)  # noqa: SIM115 (closed by remove)

    def in_hand(self, members: list[int]) -> None:
        """Note, now, the chunk the analysis is given ([]: none). Not synced: it must
        survive the process (kill -9), which the page cache does; a lost node loses it."""
        self._fh.write(json.dumps({"in_hand": members}).encode() + b"\n")

    def add(self, entry: dict) -> None:
        self.pending.append(json.dumps(entry))

    def flush(self) -> int:
        """Append what is pending and make it durable; returns how many lines."""
        if not self.pending:
            return 0
        self._fh.write(("\n".join(self.pending) + "\n").encode())
        os.fsync(self._fh.fileno())
        n, self.pending = len(self.pending), []
        return n

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
