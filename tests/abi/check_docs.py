#!/usr/bin/env python3
"""Check that docs/api.md names every public function.

The GEN_API declarations of include/gen/*.h (read as check_symbols.py reads
them) are compared with the gen_* names in docs/api.md. Fails listing the
functions the guide does not mention, per header, and the functions the guide
documents with a call form `gen_x(` that no header declares (a stale entry).
Usage: check_docs.py HEADER_DIR API_MD
"""
import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from check_symbols import header_api  # noqa: E402


def main(header_dir, api_md):
    declared = header_api(header_dir)
    text = pathlib.Path(api_md).read_text(encoding="utf-8")
    mentioned = set(re.findall(r"\bgen_[a-z0-9_]+\b", text))
    called = set(re.findall(r"\b(gen_[a-z0-9_]+)\(", text))
    missing = sorted(set(declared) - mentioned, key=lambda n: (declared[n], n))
    stale = sorted(called - set(declared))
    ok = True
    if missing:
        ok = False
        print(f"{len(missing)} public function(s) missing from {api_md}:")
        for name in missing:
            print(f"  {declared[name]}: {name}")
    if stale:
        ok = False
        print(f"{len(stale)} function(s) documented as calls in {api_md} but declared in no "
              f"header (renamed or removed?):")
        for name in stale:
            print(f"  {name}")
    if ok:
        print(f"ok: all {len(declared)} public functions appear in {api_md}")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
