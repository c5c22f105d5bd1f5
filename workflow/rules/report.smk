# The report's first page: subjects at each step, QC failures, key phenotypes by sex and links to
# the headline figures (workflow/report/workflow.rst includes it; see cardiopheno.report).


rule report_overview:
    input:
        unpack(overview_inputs),
    output:
        rst="results/report/overview.rst",
        metadata="results/report/metadata.yaml",
    log:
        "results/logs/report_overview.log",
    conda:
        "../../envs/cardiopheno.yaml"
    params:
        idps=config["figures"]["idps"],
        figures=headline_figures(),
    script:
        "../../scripts/report_overview.py"
