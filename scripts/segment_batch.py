"""Snakemake entry: segment one view of one batch of subjects (cardiopheno.segment.infer.run_batch);
the short axis when the rule has no ``view`` wildcard."""

from cardiopheno.segment.infer import run_batch
from cardiopheno.workflow_log import setup

smk = snakemake  # noqa: F821
setup(smk)
run_batch(
    smk.input.manifest,
    smk.output.segmentations,
    smk.output.table,
    smk.params.settings,
    threads=smk.threads,
    config=smk.config,
    view=smk.wildcards.get("view", "sa"),
    ed_frame=smk.params.ed_frame,
)
