"""Training DDPMs on datasets of handwritten characters; `train_ddpm.py` at the project root is the entry point
and calls these parts, each a module named for what it does:

- `config`: the one typed config (`TrainConfig`), its command line and start-up checks;
- `data`, `streaming`, `draws`: batches from a resolved dataset (in memory, decoded per batch, or streamed),
  and the random numbers of each step, independent of the process count;
- `model`: the UNet presets and the noise schedule; `losses`: targets and the (min-SNR) loss that training and
  validation share; `timesteps`: the `--timestep_sampling` registry;
- `schedule`: the learning-rate schedule over steps or the wall-clock budget; `precision`: `--mixed_precision auto`;
  `threads`: CPU threads per process;
- `loop`: the `Trainer`; `saving`: every model a run writes (final, best, snapshots, checkpoints);
  `checkpointing`: checkpoints and resume; `faults`: divergence, failed saves, signals;
- `validation`, `sample_quality`, `plots`: the validation loss and sample grids, Fréchet distance during
  training, the loss curve.
"""
