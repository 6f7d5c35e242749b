"""`python -m evaluation MODEL --dataset D [--output_dir OUT]`: score a trained model's samples.

Samples N images (seeded, batched), scores them in a domain classifier's feature space against the
dataset's test split (Fréchet distance, KID, precision/recall, and for class-conditional models the share
recognised as the requested class), and reports the same scores for real train images as the floor.
"""

import sys

from transformers import HfArgumentParser

from evaluation.errors import EvaluationError
from evaluation.evaluate_model import EvaluationConfig, check_config, evaluate_model
from evaluation.report import summary_table


def main(argv: list[str] | None = None) -> int:
    parser = HfArgumentParser(EvaluationConfig, prog="python -m evaluation", description=__doc__.split("\n\n")[1])
    parser.add_argument("model", help="A saved pipeline folder (the --output_dir of train_ddpm.py) or Hub id.")
    config, extra = parser.parse_args_into_dataclasses(args=argv)
    problem = check_config(config)
    if problem:
        parser.error(problem)
    try:
        metrics = evaluate_model(extra.model, config)
    except EvaluationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"{config.num_samples} samples from {extra.model} ({metrics['sampler_used']}, "
        f"{metrics['num_inference_steps_used']} steps, "
        f"{metrics['images_per_s']:.1f} images/s) against {metrics['num_test_images']} test images:"
    )
    print(summary_table(metrics))
    print(f"wrote {metrics['output_dir']}/metrics.json and per_class.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
