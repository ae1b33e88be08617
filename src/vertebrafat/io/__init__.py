"""The only package that knows file formats: studies in, labels/tables/SEG/pictures out."""
