"""Training DDPMs on datasets of handwritten characters: config, data, model, losses, loop, checkpointing, validation, plots.

The entry point is `train_ddpm.py` at the project root; this package holds the parts it calls.
"""
