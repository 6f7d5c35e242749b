"""A small CRNN + CTC recogniser of handwritten strings: does a synthetic set teach a model to read real ones?

The architecture is the usual one for line recognition (Shi, Bai & Yao 2015, arXiv:1507.05717): convolutions
that reduce a 40 px high line to one feature column per two pixels of width, a bidirectional LSTM over the
columns, and per-column class scores trained with CTC (Graves et al. 2006), whose blank lets a string of L
characters be read from any number of columns >= L (plus one per repeated character). torch provides the
layers and `CTCLoss`; greedy decoding and the edit distance are a few lines, written here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

# The characters read, in ASCII (`text_ascii`); index 0 of the scores is CTC's blank.
ALPHABET = "0123456789/-"


def encode(text: str) -> list[int]:
    """Class indices (1..) of a string of `ALPHABET`."""
    return [ALPHABET.index(character) + 1 for character in text]


def greedy_decode(scores: torch.Tensor, lengths: torch.Tensor) -> list[str]:
    """Best path of CTC scores (T, B, C): the argmax per column, repeats merged, blanks dropped."""
    best = scores.argmax(dim=2).T.cpu().numpy()  # (B, T)
    texts = []
    for row, length in zip(best, lengths.tolist()):
        previous, characters = 0, []
        for index in row[:length]:
            if index != previous and index != 0:
                characters.append(ALPHABET[index - 1])
            previous = index
        texts.append("".join(characters))
    return texts


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions), by the usual dynamic programme."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


class CRNN(nn.Module):
    """Line image (B, 1, 40, W) in [0, 1] -> CTC scores (W // 2, B, len(ALPHABET) + 1) as log-probabilities."""

    def __init__(self, channels: tuple[int, int, int, int] = (32, 64, 96, 128), hidden: int = 64):
        super().__init__()

        def block(cin, cout, pool):
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(pool)]

        c1, c2, c3, c4 = channels
        self.features = nn.Sequential(*block(1, c1, (2, 2)), *block(c1, c2, (2, 1)), *block(c2, c3, (2, 1)),
                                      nn.Conv2d(c3, c4, 3, padding=1), nn.BatchNorm2d(c4), nn.ReLU())
        self.rnn = nn.LSTM(c4, hidden, bidirectional=True, batch_first=False)
        self.head = nn.Linear(2 * hidden, len(ALPHABET) + 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.features(images).mean(dim=2)  # (B, c4, W // 2): height pooled away
        sequence, _ = self.rnn(features.permute(2, 0, 1))  # (T, B, 2 * hidden)
        return self.head(sequence).log_softmax(dim=2)  # (T, B, C)


def batch(images: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (40, W_i) uint8, padded on the right with background: (B, 1, 40, max W), and column counts (B,)."""
    width = max(image.shape[1] for image in images)
    width += width % 2
    out = torch.zeros(len(images), 1, images[0].shape[0], width)
    for i, image in enumerate(images):
        out[i, 0, :, : image.shape[1]] = torch.from_numpy(image).float() / 255
    return out, torch.tensor([(image.shape[1] + 1) // 2 for image in images])


@dataclass
class RecogniserConfig:
    """How the recogniser is trained (seeded: the same data and seed give the same model)."""

    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 2e-3
    seed: int = 0
    # the convolutions' widths and the LSTM's, per direction (smaller for a quick check)
    channels: tuple[int, int, int, int] = (32, 64, 96, 128)
    hidden: int = 64


def train_recogniser(images: list[np.ndarray], texts: list[str], config: RecogniserConfig = RecogniserConfig(),
                     ) -> tuple[CRNN, float]:
    """A CRNN trained with CTC on line images (40, W) uint8 and their `ALPHABET` strings; and the seconds it took."""
    torch.manual_seed(config.seed)
    model = CRNN(config.channels, config.hidden)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    steps = config.epochs * ((len(images) + config.batch_size - 1) // config.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.learning_rate, total_steps=steps)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    generator = torch.Generator().manual_seed(config.seed)
    start = time.perf_counter()
    model.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(images), generator=generator).tolist()
        for first in range(0, len(order), config.batch_size):
            chosen = order[first: first + config.batch_size]
            pixels, lengths = batch([images[i] for i in chosen])
            targets = [encode(texts[i]) for i in chosen]
            scores = model(pixels)  # (T, B, C)
            loss = ctc(scores, torch.tensor([c for t in targets for c in t]), lengths,
                       torch.tensor([len(t) for t in targets]))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            schedule.step()
    return model.eval(), time.perf_counter() - start


@torch.no_grad()
def read(model: CRNN, images: list[np.ndarray], batch_size: int = 128) -> list[str]:
    """The strings the recogniser reads in line images (40, W) uint8."""
    texts = []
    for first in range(0, len(images), batch_size):
        pixels, lengths = batch(images[first: first + batch_size])
        texts += greedy_decode(model(pixels), lengths)
    return texts


def string_scores(read_texts: list[str], true_texts: list[str]) -> dict[str, float]:
    """String accuracy (exact matches) and character error rate (edit distance over the true characters)."""
    errors = sum(edit_distance(r, t) for r, t in zip(read_texts, true_texts, strict=True))
    return {"string_accuracy": float(np.mean([r == t for r, t in zip(read_texts, true_texts)])),
            "character_error_rate": errors / max(1, sum(len(t) for t in true_texts))}
