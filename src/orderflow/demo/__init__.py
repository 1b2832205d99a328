"""Demo data: the catalog `orderflow run` seeds on first start."""
