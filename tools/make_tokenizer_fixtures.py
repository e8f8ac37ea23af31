#!/usr/bin/env python3
"""CLIP tokenizer reference ids.

  tests/fixtures/tokenizer/clip_ids.json  full CLIP ViT-L/14 vocab (/work/shared/data/clip-vit-l-14-tokenizer)
  tests/fixtures/tokenizer/tiny_ids.json  the tiny vocab of tests/fixtures/tiny-sd15/tokenizer
Each: {"info": {...}, "cases": [{"prompt", "ids_padded" (77, padding="max_length",
truncation=True), "ids_unpadded" (no padding, no truncation)}]}

Path followed: transformers >= 5 CLIPTokenizer is backed by the Rust `tokenizers` library
(no ftfy, no BasicTokenizer): normalizer = NFC -> replace every run of \\s+ with " " ->
lowercase; pre-tokenizer = CLIP regex split, then byte-level; BPE with "</w>" word ends.
See tools/README.md ("Tokenizer cleanup path").
"""
import argparse
import importlib.util
import json
import os

import transformers
from transformers import CLIPTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.normpath(os.path.join(HERE, "..", "tests", "fixtures"))

LONG1 = ", ".join(["a very detailed photograph of a cat sitting on a red chair"] * 8)
LONG2 = " ".join(f"word{i}" for i in range(120))

PROMPTS = [
    "", " ", "a", "A", "a photo of an astronaut riding a horse on mars",
    "A Photo Of An ASTRONAUT", "masterpiece, best quality, 1girl, solo, looking at viewer",
    "hello world!", "hello, world.", "what?!?", "(cat:1.2), [dog], {bird}", "a|b|c", "semi-colon; colon: dash-dash --",
    "quotes \"double\" and 'single'", "back`tick ~tilde ^caret", "under_score snake_case_name",
    "email me@example.com #hashtag $100 50% &more*", "path/to/file.png\\back\\slash",
    "numbers 0 1 12 123 1234 3.14159 1e10 -7", "2024-01-31 12:34:56", "1girl 2boys 10000000000",
    "don't", "I'm you're we've they'll she'd it's", "DON'T SHOUT", "rock'n'roll", "o'clock ’curly’ apostrophes",
    "café crème brûlée", "über straße", "naïve façade résumé", "Ελληνικά γράμματα", "Привет мир",
    "日本語のテキスト", "中文提示词", "한국어", "emoji 😀🐱‍👤🚀", "flags 🇫🇷🇯🇵", "mixed é😀a",
    "e\u0301 (combining accent)", "ﬁ ligature", "full-width ＡＢＣ１２３", "zero\u200bwidth", "no\u00a0break space",
    "tabs\tand\nnewlines\r\nmixed", "  leading and trailing spaces  ", "multiple     spaces    here",
    "&amp; &lt;tag&gt; &quot;quoted&quot; &#39;", "<html> <b>bold</b> </html>",
    "<|startoftext|>", "<|endoftext|>", "a <|endoftext|> b", "<|startoftext|>hello<|endoftext|>",
    "ALLCAPS WORDS HERE", "CamelCaseWordsTogether", "supercalifragilisticexpialidocious",
    "pneumonoultramicroscopicsilicovolcanoconiosis", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "x" * 300, "...", "!!!???", "-", "a  b", "line1\n\nline2",
    "portrait of a woman, highly detailed, 8k, trending on artstation, by greg rutkowski",
    "negative: lowres, bad anatomy, bad hands, text, error, missing fingers",
    LONG1, LONG2,
]


def run(tok, prompts):
    out = []
    for p in prompts:
        padded = tok(p, padding="max_length", max_length=77, truncation=True).input_ids
        unpadded = tok(p, padding=False, truncation=False).input_ids
        assert len(padded) == 77
        out.append({"prompt": p, "ids_padded": padded, "ids_unpadded": unpadded})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clip-tokenizer", default="/work/shared/data/clip-vit-l-14-tokenizer")
    ap.add_argument("--tiny", default=os.path.join(FIX, "tiny-sd15", "tokenizer"))
    ap.add_argument("--out", default=os.path.join(FIX, "tokenizer"))
    args = ap.parse_args()
    ftfy = importlib.util.find_spec("ftfy") is not None
    if ftfy:
        raise SystemExit("ftfy is installed; uninstall it (pip uninstall ftfy): the fixtures follow the no-ftfy path")
    os.makedirs(args.out, exist_ok=True)
    full = CLIPTokenizer(os.path.join(args.clip_tokenizer, "vocab.json"), os.path.join(args.clip_tokenizer, "merges.txt"))
    tiny = CLIPTokenizer.from_pretrained(args.tiny)
    info = {"transformers": transformers.__version__, "ftfy_installed": ftfy,
            "tokenizer_impl": type(full.backend_tokenizer).__module__ + " (tokenizers " +
            __import__("tokenizers").__version__ + ")",
            "normalizer": "NFC; Replace(\\s+ -> ' '); Lowercase",
            "pre_tokenizer": r"Split(<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+, removed, invert) then ByteLevel",
            "padding": "max_length=77 with pad = <|endoftext|>; truncation keeps <|startoftext|> + the first 75 content ids + <|endoftext|>",
            "bos": full.bos_token_id, "eos": full.eos_token_id, "pad": full.pad_token_id}
    for name, tok, src in (("clip_ids.json", full, args.clip_tokenizer), ("tiny_ids.json", tiny, args.tiny)):
        cases = run(tok, PROMPTS)
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
            json.dump({"info": dict(info, vocab_source=os.path.relpath(src, os.path.join(HERE, "..")),
                                    vocab_size=len(tok), bos=tok.bos_token_id, eos=tok.eos_token_id,
                                    pad=tok.pad_token_id),
                       "cases": cases}, f, ensure_ascii=False, indent=0)
        print(name, len(cases), "prompts")


if __name__ == "__main__":
    main()
