#!/usr/bin/env python3
"""Generate lib/pipeline/unicode_tables.c: the Unicode data the CLIP tokenizer needs.

  - character classes of the CLIP pre-tokenisation regex: \\p{L}, \\p{N}, \\s (White_Space)
  - simple per-character lowercase mappings (+ the multi-character ones, e.g. U+0130)
  - NFC data: canonical combining classes, canonical decompositions, primary composites

Classes and lowercase come from the `tokenizers` library when it is installed (the Rust
implementation transformers' CLIPTokenizer runs; probed through its Split pre-tokenizer and
Lowercase normalizer), else from Python's unicodedata. NFC data comes from unicodedata and is
cross-checked against tokenizers' NFC normalizer.

Usage: tools/gen_unicode_tables.py [--out lib/pipeline/unicode_tables.c] [--no-verify]
"""
import argparse
import os
import sys
import unicodedata

MAX_CP = 0x110000
WHITE_SPACE = [*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
               0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
CLS_OTHER, CLS_L, CLS_N, CLS_WS = 0, 1, 2, 3


def is_surrogate(cp):
    return 0xD800 <= cp <= 0xDFFF


def char_class(cp):
    if cp in WHITE_SPACE:
        return CLS_WS
    cat = unicodedata.category(chr(cp))
    if cat.startswith("L"):
        return CLS_L
    if cat.startswith("N"):
        return CLS_N
    return CLS_OTHER


def ranges(values, default):
    """[(start, end_inclusive, value)] for runs where value != default."""
    out, start, cur = [], None, None
    for cp in range(MAX_CP + 1):
        v = values(cp) if cp < MAX_CP else None
        if v != cur:
            if cur is not None and cur != default:
                out.append((start, cp - 1, cur))
            start, cur = cp, v
    return out


def canonical_decomp(cp):
    d = unicodedata.decomposition(chr(cp))
    if not d or d.startswith("<"):
        return None
    return [int(x, 16) for x in d.split()]


def tokenizers_data():
    """Classes and lowercase as the `tokenizers` library (what transformers' CLIPTokenizer runs)
    computes them, or None when it is not installed. Its Unicode version is newer than most
    Pythons', so where the two differ the library wins."""
    try:
        from tokenizers import Regex, normalizers, pre_tokenizers
    except ImportError:
        return None
    split = pre_tokenizers.Split(Regex(
        r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""),
        behavior="removed", invert=True)
    classes = {}
    cps = [cp for cp in range(MAX_CP) if not is_surrogate(cp)]
    chunk = 1 << 14
    for i in range(0, len(cps), chunk):
        part = cps[i:i + chunk]
        # probes "a?a" (one piece iff ? is a letter) and "!?!" (one piece iff ? is "other")
        text = " ".join("a" + chr(cp) + "a " + "!" + chr(cp) + "!" for cp in part)
        starts = {b: e for _, (b, e) in split.pre_tokenize_str(text)}
        pos = 0
        for cp in part:
            if starts.get(pos) == pos + 3:
                classes[cp] = CLS_L
            elif starts.get(pos + 4) == pos + 7:
                classes[cp] = CLS_OTHER
            elif (pos + 1) in starts:
                classes[cp] = CLS_N
            else:
                classes[cp] = CLS_WS
            pos += 8
    lc = normalizers.Lowercase()
    lower = {}
    for cp in cps:
        lo = lc.normalize_str(chr(cp))
        if lo != chr(cp):
            lower[cp] = lo
    return classes, lower


def verify_nfc():
    try:
        from tokenizers import normalizers
    except ImportError:
        return
    nfc = normalizers.NFC()
    bad = 0
    for cp in range(MAX_CP):
        if is_surrogate(cp):
            continue
        if canonical_decomp(cp) or unicodedata.combining(chr(cp)):
            for s in (chr(cp), unicodedata.normalize("NFD", chr(cp)), "a" + chr(cp) + "\u0301\u0323"):
                if nfc.normalize_str(s) != unicodedata.normalize("NFC", s):
                    bad += 1
    print(f"NFC: {bad} probe strings differ between unicodedata and tokenizers", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "lib", "pipeline", "unicode_tables.c"))
    ap.add_argument("--no-verify", action="store_true", help="skip the NFC cross-check")
    args = ap.parse_args()

    tk = tokenizers_data()
    source = "tokenizers" if tk else "unicodedata"

    def classes(cp):
        if is_surrogate(cp):
            return CLS_OTHER
        return tk[0][cp] if tk else char_class(cp)

    cls_ranges = ranges(classes, CLS_OTHER)
    lower, lower_multi = {}, {}
    for cp in range(MAX_CP):
        if is_surrogate(cp):
            continue
        lo = tk[1].get(cp, chr(cp)) if tk else chr(cp).lower()
        if lo != chr(cp):
            lower[cp] = lo
    simple = sorted((cp, ord(s)) for cp, s in lower.items() if len(s) == 1)
    multi = sorted((cp, [ord(c) for c in s]) for cp, s in lower.items() if len(s) > 1)
    ccc_ranges = ranges(lambda cp: 0 if is_surrogate(cp) else unicodedata.combining(chr(cp)), 0)
    decomps = []
    comps = []
    for cp in range(MAX_CP):
        if is_surrogate(cp) or 0xAC00 <= cp <= 0xD7A3:
            continue  # Hangul syllables are algorithmic
        d = canonical_decomp(cp)
        if d is None:
            continue
        decomps.append((cp, d[0], d[1] if len(d) > 1 else 0))
        if len(d) == 2 and unicodedata.normalize("NFC", chr(d[0]) + chr(d[1])) == chr(cp):
            comps.append((d[0], d[1], cp))
    comps.sort()
    if tk:
        diff = sum(1 for cp in range(MAX_CP) if not is_surrogate(cp) and tk[0][cp] != char_class(cp))
        print(f"classes: {diff} code points differ between unicodedata and tokenizers "
              "(newer Unicode); tokenizers used", file=sys.stderr)
    if not args.no_verify:
        verify_nfc()

    L = []
    w = L.append
    w("/* Generated by tools/gen_unicode_tables.py. Classes and lowercase from %s;"
      % (source,))
    w(" * NFC data from Python %s's unicodedata (Unicode %s)."
      % (sys.version.split()[0], unicodedata.unidata_version))
    w(" * Do not edit: rerun the script. */")
    w('#include "pipeline/unicode_tables.h"')
    w("")
    w("const gen__uc_range gen__uc_class_ranges[] = {")
    for a, b, v in cls_ranges:
        w("    {0x%X, 0x%X, %d}," % (a, b, v))
    w("};")
    w("const size_t gen__uc_class_count = sizeof gen__uc_class_ranges / sizeof gen__uc_class_ranges[0];")
    w("")
    w("const gen__uc_range gen__uc_ccc_ranges[] = {")
    for a, b, v in ccc_ranges:
        w("    {0x%X, 0x%X, %d}," % (a, b, v))
    w("};")
    w("const size_t gen__uc_ccc_count = sizeof gen__uc_ccc_ranges / sizeof gen__uc_ccc_ranges[0];")
    w("")
    w("const gen__uc_pair gen__uc_lower[] = {")
    for a, b in simple:
        w("    {0x%X, 0x%X}," % (a, b))
    w("};")
    w("const size_t gen__uc_lower_count = sizeof gen__uc_lower / sizeof gen__uc_lower[0];")
    w("")
    w("const gen__uc_multi gen__uc_lower_multi[] = {")
    for a, s in multi:
        assert len(s) <= 3
        w("    {0x%X, %d, {%s}}," % (a, len(s), ", ".join("0x%X" % c for c in s)))
    w("};")
    w("const size_t gen__uc_lower_multi_count = sizeof gen__uc_lower_multi / sizeof gen__uc_lower_multi[0];")
    w("")
    w("const gen__uc_triple gen__uc_decomp[] = {")
    for a, b, c in decomps:
        w("    {0x%X, 0x%X, 0x%X}," % (a, b, c))
    w("};")
    w("const size_t gen__uc_decomp_count = sizeof gen__uc_decomp / sizeof gen__uc_decomp[0];")
    w("")
    w("/* Sorted by (first, second). */")
    w("const gen__uc_triple gen__uc_compose[] = {")
    for a, b, c in comps:
        w("    {0x%X, 0x%X, 0x%X}," % (a, b, c))
    w("};")
    w("const size_t gen__uc_compose_count = sizeof gen__uc_compose / sizeof gen__uc_compose[0];")
    with open(args.out, "w") as f:
        f.write("\n".join(L) + "\n")
    print(f"wrote {args.out}: {len(cls_ranges)} class ranges, {len(ccc_ranges)} ccc ranges, "
          f"{len(simple)}+{len(multi)} lowercase, {len(decomps)} decompositions, {len(comps)} compositions",
          file=sys.stderr)


if __name__ == "__main__":
    main()
