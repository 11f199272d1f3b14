"""The journal of a running batch: finished members, appended as JSON lines to a file
beside the batch's output, so a batch killed at member 9,999 of 10,000 (kill -9, a lost
node, SLURM's TIMEOUT) resumes there instead of starting again.

Snakemake deletes a failed job's outputs but not this file. The first line names the
plan it belongs to (a digest of the batch's members and significant parameters); a
journal of another plan, or one that cannot be read, is ignored with a warning, never
trusted. A line cut short by a kill is dropped. The journal goes away once the batch
table is written."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from .atomic import write_atomic
from .manifest import jsonable

log = logging.getLogger("starbatch")
FORMAT = "starbatch-journal-1"


def plan_digest(plan: dict) -> str:
    keep = {k: plan[k] for k in ("batch", "analysis", "params", "members")}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()


def journal_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(f".{output.name}.journal")


class Journal:
    def __init__(self, path: str | Path, digest: str):
        self.path = Path(path)
        self.digest = digest
        self.pending: list[str] = []

    def read(self) -> dict[int, dict]:
        """{member index: record} of what an earlier run finished; {} when there is no
        journal, or it belongs to another plan or is damaged (then it is set aside)."""
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return {}
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
        done = {}
        for number, line in enumerate(lines[1:], start=2):
            try:
                record = json.loads(line)
                done[int(record["i"])] = record
            except (ValueError, KeyError, TypeError):
                log.warning("journal %s: line %d is cut short; dropped", self.path, number)
                break  # only the last line can be partial (appends are sequential)
        return done

    def _distrust(self, why: str) -> dict:
        log.warning("journal %s ignored: %s", self.path, why)
        self.path.unlink(missing_ok=True)
        return {}

    def start(self, done: dict[int, dict]) -> None:
        """Begin (or rewrite) the journal holding ``done``."""
        header = json.dumps({"format": FORMAT, "plan": self.digest})
        lines = [header] + [json.dumps(r) for _, r in sorted(done.items())]
        write_atomic(self.path, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))

    def add(self, index: int, path: str, outcome, settings: dict | None = None) -> None:
        record = {
            "i": index,
            "path": path,
            "settings": {k: jsonable(v) for k, v in (settings or {}).items()},
            "result": {k: jsonable(v) for k, v in outcome.result.items()},
            "flag": int(outcome.flag),
            "error": outcome.error,
            "seconds": float(outcome.seconds),
            "input": {k: jsonable(v) for k, v in outcome.input.items()},
        }
        self.pending.append(json.dumps(record))

    def flush(self) -> int:
        """Append what is pending and make it durable; returns how many lines."""
        if not self.pending:
            return 0
        with open(self.path, "a") as fh:
            fh.write("\n".join(self.pending) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        n, self.pending = len(self.pending), []
        return n

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
