"""Class tables: MNIST digits, Persian digits and the Hoda letter classes.

The Hoda letter table is the project's own copy of the class list published with the Hoda character
dataset (labels 0-31 are the 32 letters of the Persian alphabet in standard order, 32-35 four extra
glyph forms). The position in `HODA_LETTERS` is the label stored in a Hoda character `.cdb` file.
"""

MNIST_CLASSES: tuple[str, ...] = tuple("0123456789")

# Extended Arabic-Indic digits U+06F0..U+06F9; the label stored in a Hoda digit `.cdb` is the digit.
PERSIAN_DIGITS: tuple[str, ...] = tuple("۰۱۲۳۴۵۶۷۸۹")

# (class name = the character(s), Latin name, text to render). The rendered text of the three joined
# forms is the Arabic Presentation Forms-B code point, because text is drawn without shaping.
HODA_LETTERS: tuple[tuple[str, str, str], ...] = (
    ("ا", "alef", "ا"),
    ("ب", "be", "ب"),
    ("پ", "pe", "پ"),
    ("ت", "te", "ت"),
    ("ث", "se", "ث"),
    ("ج", "jim", "ج"),
    ("چ", "che", "چ"),
    ("ح", "he_jimi", "ح"),
    ("خ", "khe", "خ"),
    ("د", "dal", "د"),
    ("ذ", "zal", "ذ"),
    ("ر", "re", "ر"),
    ("ز", "ze", "ز"),
    ("ژ", "zhe", "ژ"),
    ("س", "sin", "س"),
    ("ش", "shin", "ش"),
    ("ص", "sad", "ص"),
    ("ض", "zad", "ض"),
    ("ط", "ta", "ط"),
    ("ظ", "za", "ظ"),
    ("ع", "ain", "ع"),
    ("غ", "ghain", "غ"),
    ("ف", "fe", "ف"),
    ("ق", "ghaf", "ق"),
    ("ک", "kaf", "ک"),
    ("گ", "gaf", "گ"),
    ("ل", "lam", "ل"),
    ("م", "mim", "م"),
    ("ن", "noon", "ن"),
    ("و", "vav", "و"),
    ("ه", "he", "ه"),
    ("ی", "ye", "ی"),
    ("ئـ", "hamze", "\ufe8b"),  # yeh with hamza above, initial form
    ("آ", "alef_hat", "آ"),  # alef with madda above
    ("هـ", "he_initial", "\ufeeb"),  # heh, initial/medial ("binocular") form
    ("ـه", "he_final", "\ufeea"),  # heh, final joined form
)

HODA_LETTER_CLASSES: tuple[str, ...] = tuple(name for name, _, _ in HODA_LETTERS)
PERSIAN_LETTERS: tuple[str, ...] = HODA_LETTER_CLASSES[:32]
EXTRA_FORMS: tuple[str, ...] = HODA_LETTER_CLASSES[32:]

# The Persian label space: digits first, then the letters in Hoda order (46 classes).
PERSIAN_CLASSES: tuple[str, ...] = PERSIAN_DIGITS + HODA_LETTER_CLASSES

# How a bare number in a folder name, file name or labels.csv maps to a class (`--numeric_labels`).
NUMERIC_TABLES: dict[str, tuple[str, ...]] = {
    "persian": PERSIAN_CLASSES,  # 0-9 digits, 10-45 letters
    "letters": HODA_LETTER_CLASSES,  # 0-35, the labels of the Hoda character set
}

_BY_NAME: dict[str, str] = {name: name for name in PERSIAN_CLASSES}
_BY_NAME.update({latin: name for name, latin, _ in HODA_LETTERS})
_BY_NAME.update({f"digit_{i}": name for i, name in enumerate(PERSIAN_DIGITS)})

RENDER_TEXT: dict[str, str] = {name: name for name in PERSIAN_DIGITS}
RENDER_TEXT.update({name: text for name, _, text in HODA_LETTERS})


def resolve_persian_class(label: str, numeric_labels: str = "persian") -> str | None:
    """Map a label as written in a folder name, file name or CSV cell to a Persian class name.

    Args:
        label (`str`): a Persian character ("ب"), a Latin name ("be", any case) or a number ("11").
        numeric_labels (`str`, defaults to `"persian"`): the key of `NUMERIC_TABLES` used for numbers.

    Returns:
        `str | None`: the class name (its Persian character), or `None` when the label is not a known class.
    """
    label = label.strip()
    if label in _BY_NAME:
        return _BY_NAME[label]
    if label.lower() in _BY_NAME:
        return _BY_NAME[label.lower()]
    if label.isascii() and label.isdigit():
        table = NUMERIC_TABLES[numeric_labels]
        index = int(label)
        return table[index] if index < len(table) else None
    return None


def persian_order(names: set[str] | list[str]) -> list[str]:
    """Sort Persian class names into the project's label order (digits, then letters in Hoda order)."""
    return sorted(names, key=PERSIAN_CLASSES.index)
