"""The engine's user-facing errors, in a module of their own so that an entry point
can catch them without importing pandas (tables) or the runner's dependencies."""

from __future__ import annotations

MAX_REPORTED = 25


class TableError(ValueError):
    """One or more problems in a task table; the message lists each with its place."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = problems[:MAX_REPORTED]
        more = len(problems) - len(shown)
        text = "\n".join(f"  - {p}" for p in shown)
        if more:
            text += f"\n  ... and {more} more"
        super().__init__(f"{len(problems)} problem(s) in the task table:\n{text}")


class BatchError(RuntimeError):
    """The whole batch failed (set-up failed, or too many members failed)."""
