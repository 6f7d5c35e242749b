"""The CRNN + CTC string recogniser's decoding and scores. (A test that it learns a tiny seeded set in seconds is
still to come: 120 steps on 320 strings left it reading blanks; benchmarks/synthetic_strings.py trains it for
real, docs/synthesis.md.)"""


from evaluation.string_recogniser import (
    edit_distance,
    greedy_decode,
    string_scores,
)


def test_decoding_and_scores():
    import torch

    # columns: 1 1 blank 1 2 2 -> "0 0 1" (a blank separates the repeated 0)
    best = torch.tensor([1, 1, 0, 1, 2, 2])
    scores = torch.full((6, 1, 13), -10.0)
    scores[torch.arange(6), 0, best] = 0.0
    assert greedy_decode(scores, torch.tensor([6])) == ["001"]
    assert greedy_decode(scores, torch.tensor([2])) == ["0"]  # only the first two columns are the image's
    assert edit_distance("0912", "0921") == 2 and edit_distance("", "123") == 3 and edit_distance("12", "12") == 0
    assert string_scores(["12", "34"], ["12", "35"]) == {"string_accuracy": 0.5, "character_error_rate": 0.25}
