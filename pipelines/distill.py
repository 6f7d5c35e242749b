"""Distil a saved model into a few-step student: 1,000 samples in about a second on a CPU.

    python -m pipelines.distill TEACHER --output_dir DIR [--num_inference_steps 2] [--max_train_minutes 6]

TEACHER is a folder saved by train_ddpm.py or a Hub model id. The student is a pipeline like every other model
here (`pipelines.generate`, `python -m evaluation`, the web demo and `pipelines.push` take it as it is) and samples
in its own steps when none are asked for. Distilling is training, so the work lives in `training.distillation`;
the command sits here, beside generate, where users look for it.
"""

from __future__ import annotations

import os

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed

from pipelines.fast_inference import cpu_has_native_bf16
from pipelines.generate import OneLineErrorParser
from pipelines.sampling import ModelLoadError, load_pipeline


def main(argv: list[str] | None = None) -> None:
    # The training side is imported here, not at the top: `pipelines` itself imports nothing from training.
    from training.config import ConfigError
    from training.distillation import DistillConfig, Distiller, checked_student_steps, folded_guidance
    from training.faults import exit_on_fault

    parser = OneLineErrorParser(DistillConfig, prog="python -m pipelines.distill",
                                description="Distil a saved model into a student that samples in 1, 2 or 4 steps.")
    parser.add_argument("teacher", help="a folder saved by train_ddpm.py, or a Hub model id")
    cfg, positional = parser.parse_args_into_dataclasses(args=argv)
    if (problem := cfg.problem()) is not None:
        parser.error(problem)
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        parser.error("distillation runs in one process; launch it without --num_processes")
    set_seed(cfg.seed)
    try:
        teacher = load_pipeline(positional.teacher)
        checked_student_steps(cfg, teacher)
        guidance = folded_guidance(cfg, teacher)
    except (ModelLoadError, ConfigError) as error:
        parser.error(str(error))
    # bf16 autocast where the CPU has it natively (1.3-1.5x faster steps for these UNets), float32 elsewhere.
    precision = "bf16" if not torch.cuda.is_available() and cpu_has_native_bf16() else "no"
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=precision)
    teacher.to(accelerator.device)
    with exit_on_fault(parser.prog, (ConfigError,)):
        Distiller(cfg, accelerator, teacher, positional.teacher, guidance).run()


if __name__ == "__main__":
    main()
