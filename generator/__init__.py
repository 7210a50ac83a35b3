"""Static report-site generator for CNN interpretability (MkDocs Material)."""
