"""Send a Snakemake script's logging (and warnings) to the rule's ``log:`` file."""

from __future__ import annotations

import logging


def setup(smk) -> None:
    """Configure root logging to write to ``smk.log[0]`` (if the rule declares a log)."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if len(smk.log):
        handlers.append(logging.FileHandler(smk.log[0], mode="w"))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)
