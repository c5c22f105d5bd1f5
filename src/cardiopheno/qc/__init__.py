"""Quality control: image, segmentation, phenotype and model-uncertainty checks (thresholds in
config ``qc:``), per-batch tables merged into results/qc.parquet, montages and a summary figure."""

from cardiopheno.qc.checks import CheckResult, QCThresholds

__all__ = ["CheckResult", "QCThresholds"]
