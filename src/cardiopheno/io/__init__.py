"""Reading and writing: NIfTI cines and label maps, Parquet tables, manifests, DICOM, UK Biobank."""
