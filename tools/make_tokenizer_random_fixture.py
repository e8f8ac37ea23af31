#!/usr/bin/env python3
"""Random-prompt tokenizer fixture: 400 prompts mixing ASCII, contractions, special
tokens, whitespace of every kind, combining marks (NFC composition and reordering),
Hangul jamo, CJK, emoji, U+0130, random BMP/astral code points, run through transformers'
CLIPTokenizer with the full CLIP vocabulary.

Writes tests/fixtures/tokenizer/random_ids.json in the layout of clip_ids.json.
"""
import argparse
import json
import os
import random

import transformers
from transformers import CLIPTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
POOL = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") * 4 +
        list(" \t\n\r\x0b\x0c\u00a0\u2028\u2029\u3000\u200b\u0085") * 3 +
        list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") * 2 +
        ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "<|endoftext|>", "<|startoftext|>",
         "<|ENDOFTEXT|>", "\u0130", "\u00df", "\u017f", "\u03a3", "\ufb01", "\uff21", "\u2160", "\u00bd",
         "\u0661", "\u0966", "\x00", "\x01", "\x7f", "\ufffd", "\ufeff"] +
        [chr(c) for c in range(0x300, 0x370)] +                   # combining diacritics
        [chr(c) for c in (0x1100, 0x1161, 0x11A8, 0x1112, 0x1175)] +  # Hangul jamo
        list("àéîõüçñåøæœÀÉÎÕÜÇÑÅ") + list("αβγδΩπσς") + list("абвгдЖЯ") + list("日本語中文한국어テキスト") +
        list("😀🐱🚀🇫🇷\u200d") + list("अआइक्\u093c\u0951") + list("عربي\u064b\u0651"))


def rand_prompt(rng):
    kind = rng.random()
    n = rng.randint(0, 40) if kind < 0.9 else rng.randint(60, 160)
    parts = []
    for _ in range(n):
        r = rng.random()
        if r < 0.05:
            c = rng.randint(0x80, 0x2FFFF)
            if 0xD800 <= c <= 0xDFFF:
                c = 0x41
            parts.append(chr(c))
        elif r < 0.15:
            parts.append(rng.choice(["cat", "photo", "of", "a", "the", "masterpiece", "Don", "it"]))
        else:
            parts.append(rng.choice(POOL))
    return "".join(parts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clip-tokenizer", default="/work/shared/data/clip-vit-l-14-tokenizer")
    ap.add_argument("--out", default=os.path.join(HERE, "..", "tests", "fixtures", "tokenizer", "random_ids.json"))
    ap.add_argument("--count", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    tok = CLIPTokenizer(os.path.join(args.clip_tokenizer, "vocab.json"), os.path.join(args.clip_tokenizer, "merges.txt"))
    cases = []
    for _ in range(args.count):
        p = rand_prompt(rng)
        cases.append({"prompt": p,
                      "ids_padded": tok(p, padding="max_length", max_length=77, truncation=True).input_ids,
                      "ids_unpadded": tok(p, padding=False, truncation=False).input_ids})
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"info": {"transformers": transformers.__version__, "seed": args.seed,
                            "bos": tok.bos_token_id, "eos": tok.eos_token_id, "pad": tok.pad_token_id,
                            "vocab_size": len(tok), "vocab_source": "../shared/data/clip-vit-l-14-tokenizer"},
                   "cases": cases}, f, ensure_ascii=True, separators=(",", ":"))
    print(len(cases), "random prompts")


if __name__ == "__main__":
    main()
