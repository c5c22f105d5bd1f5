"""The error of an input checked before any job runs: every problem listed at once."""

from __future__ import annotations


class ProblemsError(ValueError):
    """``what`` (a file or the config) with problems; ``problems`` lists each as a readable line,
    so a user fixes them all in one pass rather than one error per run."""

    def __init__(self, what: str, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{what} has {len(problems)} problem(s):\n{lines}")
