# Segmentation: one job per batch of subjects and view (a data loader reads ahead, all frames'
# slices go through the network in batches), and an optional training rule (off in the demo).
# The short axis keeps its historical paths; the other views (cardiopheno.views) are one rule.


rule segment_batch:
    input:
        manifest=segment_input,
    output:
        segmentations=directory("results/segment/{batch}"),
        table="results/segment/{batch}.parquet",
    log:
        "results/logs/segment_batch/{batch}.log",
    conda:
        "../../envs/cardiopheno.yaml"
    threads: 2
    params:
        settings={k: v for k, v in config["segmentation"].items() if k != "train"},
        ed_frame=config["phenotypes"]["ed_frame"],
    script:
        "../../scripts/segment_batch.py"


rule segment_view_batch:
    input:
        manifest=segment_input,
    output:
        segmentations=directory("results/segment_{view}/{batch}"),
        table="results/segment_{view}/{batch}.parquet",
    log:
        "results/logs/segment_view_batch/{view}_{batch}.log",
    conda:
        "../../envs/cardiopheno.yaml"
    threads: 2
    params:
        settings={k: v for k, v in config["segmentation"].items() if k != "train"},
        ed_frame=config["phenotypes"]["ed_frame"],
    script:
        "../../scripts/segment_batch.py"


rule train_segmentation:
    output:
        checkpoint=config["segmentation"]["train"]["checkpoint"],
    log:
        "results/logs/train_segmentation.log",
    conda:
        "../../envs/cardiopheno.yaml"
    threads: 2
    params:
        settings=config["segmentation"]["train"],
    script:
        "../../scripts/train_segmentation.py"
