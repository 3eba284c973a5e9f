#!/usr/bin/env python3
"""Generates pretokenizer_cases.txt: random strings split by the original pre-tokenizer regexes
(as the models' tokenizer.json files write them) using Python's third-party `regex` module, which
supports \\p{..} classes and lookahead. The C++ scanners (tokenizer/pretokenizer_patterns.cc) must
reproduce every split (tests/tokenizer/pretokenizer_cases_test.cc).

Run: python3 tests/tokenizer/data/gen_pretokenizer_cases.py > tests/tokenizer/data/pretokenizer_cases.txt
Format, one case per line: preset TAB hex(text) TAB hex(piece),hex(piece),...
Known, deliberate difference: the regexes' case-insensitive contractions (?i:'s) also match the
long s U+017F under Unicode case folding; llama.cpp and sluice match only [sS], so U+017F is left
out of the alphabet.
"""
import random
import regex

# The regexes, as written in the families' tokenizer.json (DeepSeek LLM's class spelled with the
# exact code points; some are canonical singletons that NFC would change).
R = {
 'gpt2': [r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"],
 'qwen2': [r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
 'qwen35': [r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
 'llama-bpe': [r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
 'gpt-4o': [r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"],
 'deepseek-llm': ["[\r\n]", "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝ\u1F5F-\u1F7Dᾀ-ᾴᾶ-ᾼ\u1FBEῂ-ῄῆ-ῌ\u1FD0-\u1FD3\u1FD6-\u1FDBῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u2126ℨ\u212A-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ\U00010400-\U0001044f𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+", "\\s?[!-/:-~！-／：-～‘-‟　-。]+", "\\s+$", "[一-龥ࠀ-一가-퟿]+", "\\p{N}+"],
 'deepseek-v3': ["\\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+", "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"],
 'deepseek-coder': ["[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}"],
}



def split(rxs, s):
    pieces = [s] if s else []
    for rx in rxs:
        r = regex.compile(rx)
        out = []
        for p in pieces:
            last = 0
            for m in r.finditer(p):
                if m.start() > last:
                    out.append(p[last:m.start()])
                if m.end() > m.start():
                    out.append(m.group())
                last = m.end()
            if last < len(p):
                out.append(p[last:])
        pieces = out
    return pieces


alpha = list("abcxyzABCXYZ0123456789'''sStTrReEvVmMlLdD  \t\n\r.,!?-_/$+<>=~`|\\\"#()[]{}:;@^&*%") + \
  list("éÉçÇñßøÅæœ") + ["\u00a0","\u3000","\u2003","\u0085","\x0b","\x0c","\x1c","\x07","\u200d","\u0301","\u0308","\u17b6","\u0915","\u093f"] + \
  list("中文字日本語かなカナ한국어") + list("ΑΒΓαβγДЖЗджзǅʰˆ½²Ⅷ٣") + ["🚀","✅","😀","€","™","。","，","！","‘","’","“"] + list("ᎠꭰǄǅǆ")


def main():
    random.seed(20240607)
    for name in R:
        cases = ["".join(random.choice(alpha) for _ in range(random.randint(0, 30)))
                 for _ in range(150)]
        for c in cases:
            pieces = split(R[name], c)
            assert "".join(pieces) == c
            print("%s\t%s\t%s" % (name, c.encode().hex(),
                                   ",".join(p.encode().hex() for p in pieces)))


if __name__ == "__main__":
    main()
