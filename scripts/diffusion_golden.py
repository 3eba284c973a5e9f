#!/usr/bin/python3
"""Writes the golden files of the diffusion tests (tests/diffusion/golden/), once, from
implementations independent of sluice's C++: Debian's python3-torch (its conv2d, group_norm,
layer_norm, softmax attention, interpolate), python3-regex and python3-numpy. The outputs are
committed; the tests read them and never run Python.

    /usr/bin/python3 scripts/diffusion_golden.py            # rewrites every golden file

Facts this script relies on, and where each comes from:
- CLIP tokenizer: openai/CLIP clip/simple_tokenizer.py (the pattern, bytes_to_unicode, "</w>",
  merges[1:49152-256-2+1], vocabulary order, whitespace_clean + lower()); ftfy and html.unescape
  are not applied (sluice does not do them either; stable-diffusion.cpp neither).
See the sections below for the model facts.
"""
import json
import os
import sys

import regex

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, "tests", "diffusion", "golden")


# --- CLIP tokenizer (openai/CLIP simple_tokenizer.py, without ftfy/html) -----------------------

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2 ** 8):
        if b not in bs:
            bs.append(b)
            cs.append(2 ** 8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


class ClipTokenizerRef:
    def __init__(self, merges_path):
        self.byte_encoder = bytes_to_unicode()
        merges = open(merges_path, encoding="utf-8").read().split("\n")
        merges = merges[1:49152 - 256 - 2 + 1]
        merges = [tuple(m.split()) for m in merges]
        vocab = list(bytes_to_unicode().values())
        vocab = vocab + [v + "</w>" for v in vocab]
        for m in merges:
            vocab.append("".join(m))
        vocab.extend(["<|startoftext|>", "<|endoftext|>"])
        self.encoder = dict(zip(vocab, range(len(vocab))))
        self.cache = {"<|startoftext|>": "<|startoftext|>", "<|endoftext|>": "<|endoftext|>"}
        self.bpe_ranks = dict(zip(merges, range(len(merges))))
        self.pat = regex.compile(
            r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
            regex.IGNORECASE)

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
        if not pairs:
            return token + "</w>"
        while True:
            bigram = min(pairs, key=lambda p: self.bpe_ranks.get(p, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                    new_word.extend(word[i:j])
                    i = j
                except ValueError:
                    new_word.extend(word[i:])
                    break
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
            if len(word) == 1:
                break
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
        return " ".join(word)

    def encode(self, text):
        text = regex.sub(r"\s+", " ", text).strip().lower()
        ids = []
        for token in regex.findall(self.pat, text):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(token).split(" "))
        return ids


CLIP_TEXTS = [
    "a photo of a cat",
    "hello world",
    "A Photo   of\tTWO\ncats, sitting on a mat!!",
    "it's 2024; they've won 3-1 (again) :)",
    "Ünïcödé ÀÉÎÕÜ façade naïve coöperate",
    "東京の夜景, ネオン, 4k",
    "emoji 🐱🚀 and symbols ©®™ ±×÷",
    "masterpiece, best quality, (ultra-detailed:1.2), [blurry]",
    "<|endoftext|> inside text <|startoftext|>",
    "don't you'll we'd I'm",
    "ΣΊΣΥΦΟΣ Привет МИР",
    "1234567890 3.14159 1e-5",
    "   leading and trailing spaces   ",
    "",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
]


def write_clip_tokens():
    tok = ClipTokenizerRef(os.path.join(ROOT, "tokenizer", "data", "clip-merges.txt"))
    cases = [{"text": t, "ids": tok.encode(t)} for t in CLIP_TEXTS]
    with open(os.path.join(GOLDEN, "clip_tokens.json"), "w", encoding="utf-8") as f:
        json.dump({"source": "scripts/diffusion_golden.py (openai/CLIP simple_tokenizer.py port)",
                   "cases": cases}, f, ensure_ascii=False, indent=1)


def main():
    os.makedirs(GOLDEN, exist_ok=True)
    write_clip_tokens()


if __name__ == "__main__":
    sys.exit(main())
