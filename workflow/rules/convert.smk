# Real inputs: a manifest whose image entries (sa, la_2ch, la_4ch, ao) are DICOM folders or UK Biobank zips is converted to
# 4D NIfTI per batch. results/convert/{batch}.parquet lists every subject of the batch (eid, sa =
# absolute NIfTI path, seg_sa, source, ok, reason): the per-batch manifest that segmentation reads
# when the cohort brings DICOM. NIfTI entries pass through unchanged.


rule convert_dicom:
    input:
        manifest=batch_manifest,
    output:
        table="results/convert/{batch}.parquet",
        images=directory("results/convert/{batch}"),
    log:
        "results/logs/convert_dicom/{batch}.log",
    conda:
        "../../envs/cardiopheno.yaml"
    params:
        dicom=config["inputs"]["dicom"],
    script:
        "../../scripts/convert_dicom_batch.py"
