"""The built-in translation task: integers 0..999,999,999 in digits -> English words.

    "40512" -> "forty thousand five hundred twelve"

Everything is generated here (no downloads). Source tokens are digits, target tokens are
words; both vocabularies start with the special tokens <pad>, <bos>, <eos>. A held-out test
set of numbers is drawn first, with its own seed, and the training sampler never emits them.
Held-out numbers have 3 to 9 digits: there are only 100 numbers of 1 or 2 digits, and a test
set drawn over all lengths would take nearly all of them, so that the model never saw a short
input in training (it then fails on every one of them).
"""
import random

SPECIALS = ["<pad>", "<bos>", "<eos>"]
PAD, BOS, EOS = 0, 1, 2

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = [(1_000_000, "million"), (1_000, "thousand")]

SRC_VOCAB = SPECIALS + list("0123456789")
TGT_VOCAB = SPECIALS + _ONES + _TENS[2:] + ["hundred", "thousand", "million"]
MAX_NUMBER = 999_999_999
MAX_SRC_LEN = 9 + 1          # digits + <eos>
MAX_TGT_LEN = 14 + 2         # the longest phrase has 14 words; + <bos> / <eos>


def _below_thousand(n):
    """Words of 0 < n < 1000."""
    words = []
    if n >= 100:
        words += [_ONES[n // 100], "hundred"]
        n %= 100
    if n >= 20:
        words.append(_TENS[n // 10])
        n %= 10
    if n:
        words.append(_ONES[n])
    return words


def number_to_words(n):
    """English words of 0 <= n <= 999,999,999, without "and" or hyphens.

        >>> number_to_words(40512)
        'forty thousand five hundred twelve'
    """
    if not 0 <= n <= MAX_NUMBER:
        raise ValueError(f"number_to_words: {n} is outside 0..{MAX_NUMBER:,}")
    if n == 0:
        return "zero"
    words = []
    for scale, name in _SCALES:
        if n >= scale:
            words += _below_thousand(n // scale) + [name]
            n %= scale
    if n:
        words += _below_thousand(n)
    return " ".join(words)


def encode_source(n):
    """Digit token ids of n, then <eos>."""
    return [SRC_VOCAB.index(c) for c in str(n)] + [EOS]


def encode_target(n):
    """<bos>, word token ids of n's words, <eos>."""
    return [BOS] + [TGT_VOCAB.index(w) for w in number_to_words(n).split()] + [EOS]


def decode_target(ids):
    """Words of target ids, stopping at <eos> and skipping specials."""
    words = []
    for i in ids:
        if i == EOS:
            break
        if i >= len(SPECIALS):
            words.append(TGT_VOCAB[i])
    return " ".join(words)


def sample_number(rng, min_digits=1):
    """A number whose digit count is uniform in min_digits..9, so short numbers are common."""
    n_digits = rng.randint(min_digits, 9)
    low = 0 if n_digits == 1 else 10 ** (n_digits - 1)
    return rng.randint(low, 10 ** n_digits - 1)


class NumberWordsData:
    """Held-out test numbers and a seeded training sampler that never emits them.

    Args: n_test (held-out numbers, 3 to 9 digits), seed (of the training stream), test_seed.
    """

    def __init__(self, n_test=2000, seed=0, test_seed=12345):
        test_rng = random.Random(test_seed)
        test = []
        seen = set()
        while len(test) < n_test:
            n = sample_number(test_rng, min_digits=3)
            if n not in seen:
                seen.add(n)
                test.append(n)
        self.test_numbers = test
        self._held_out = seen
        self.rng = random.Random(seed)

    def train_numbers(self, batch_size):
        """batch_size numbers from the training stream (never a held-out one)."""
        out = []
        while len(out) < batch_size:
            n = sample_number(self.rng)
            if n not in self._held_out:
                out.append(n)
        return out

    def get_state(self):
        return self.rng.getstate()

    def set_state(self, state):
        self.rng.setstate(state)


def pad_batch(seqs, pad=PAD):
    """Right-pad lists of ids to the longest; returns a list of equal-length lists."""
    width = max(len(s) for s in seqs)
    return [s + [pad] * (width - len(s)) for s in seqs]
