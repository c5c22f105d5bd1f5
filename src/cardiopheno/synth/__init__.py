"""Synthetic demo cohort with full ground truth: phantom hearts, cine images, outcomes, faults."""

from cardiopheno.synth.cohort import generate_cohort

__all__ = ["generate_cohort"]
