"""Sample-quality evaluation: a domain classifier as feature extractor, and `evaluate` metrics."""
