# cardiopheno: cardiac cine MRI -> segmentations -> QC and imaging phenotypes -> population statistics.
# The stages live in workflow/rules/; what a run produces is decided in final_outputs() (common.smk).
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/batches.smk"


wildcard_constraints:
    batch=r"b\d{4}",
    view="|".join(VIEWS_SEGMENTED) or "none",


include: "workflow/rules/cohort.smk"
include: "workflow/rules/convert.smk"
include: "workflow/rules/segment.smk"
include: "workflow/rules/phenotypes.smk"
include: "workflow/rules/qc.smk"
include: "workflow/rules/association.smk"
include: "workflow/rules/phewas.smk"
include: "workflow/rules/survival.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/summary.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
