"""Short-axis cine segmentation: a MONAI 2D network applied per slice to every frame.

Pre/post-processing lives in :mod:`cardiopheno.segment.transforms` (used identically by training
and inference), the network in :mod:`~cardiopheno.segment.network`, datasets in
:mod:`~cardiopheno.segment.data` (their sources in :mod:`~cardiopheno.segment.training_sources`),
training in :mod:`~cardiopheno.segment.train` (its augmentation in
:mod:`~cardiopheno.segment.augment`) and inference in :mod:`~cardiopheno.segment.infer`, which names its steps (one small module each) and
the batch driver (:mod:`~cardiopheno.segment.batch`).
"""
