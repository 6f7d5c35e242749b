"""Synthetic handwritten data from trained models: `compose` lays characters out as handwritten strings with
per-character boxes, `generated` draws the shards of a set from a model, and `writer` writes them resumably;
`python -m pipelines.synthesize` is the command."""
