"""cardiopheno: population-scale cardiac MRI phenotyping."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cardiopheno")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

# Label convention of every segmentation we read or write (the ukbb_cardiac convention).
BACKGROUND, LV_CAVITY, LV_MYOCARDIUM, RV_CAVITY = 0, 1, 2, 3
LABEL_NAMES = {LV_CAVITY: "LV cavity", LV_MYOCARDIUM: "LV myocardium", RV_CAVITY: "RV cavity"}
# Aortic cine (view "ao"): the ukbb_cardiac labels of seg_ao.
ASCENDING_AORTA, DESCENDING_AORTA = 1, 2
AORTA_LABEL_NAMES = {ASCENDING_AORTA: "ascending aorta", DESCENDING_AORTA: "descending aorta"}
