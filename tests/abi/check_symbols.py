#!/usr/bin/env python3
"""Check that the shared library exports exactly the GEN_API functions.

Three sets must be equal:
  * dynamic symbols the library defines (nm -D --defined-only),
  * the global names in lib/libgen.map,
  * the functions declared with GEN_API in include/gen/*.h.
Every export must also carry a LIBGEN_* version node.
Usage: check_symbols.py LIBGEN_SO MAP_FILE HEADER_DIR
"""
import pathlib
import re
import subprocess
import sys


def exported(lib):
    out = subprocess.run(["nm", "-D", "--defined-only", "--with-symbol-versions", lib],
                         check=True, capture_output=True, text=True).stdout
    symbols = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        kind, name = parts[1], parts[2]
        if kind in "TtWwDdBbRr" and not kind.islower():
            base, _, version = name.partition("@")
            version = version.lstrip("@")
            if re.fullmatch(r"LIBGEN_[0-9_]+", base):
                continue  # the version node symbol itself
            symbols[base] = version
    return symbols


def map_globals(path):
    text = re.sub(r"/\*.*?\*/", "", pathlib.Path(path).read_text(), flags=re.S)
    names = set()
    for block in re.finditer(r"global:(.*?)(?:local:|\})", text, flags=re.S):
        names.update(n.strip() for n in block.group(1).split(";") if n.strip())
    return names


def header_api(directory):
    names = {}
    for header in sorted(pathlib.Path(directory).glob("*.h")):
        text = re.sub(r"/\*.*?\*/", "", header.read_text(), flags=re.S)
        text = re.sub(r"#\s*define[^\n]*(\\\n[^\n]*)*", "", text)
        for m in re.finditer(r"\bGEN_API\b([^;{]*?)\b(gen_\w+)\s*\(", text):
            names[m.group(2)] = header.name
    return names


def main():
    lib, mapfile, headers = sys.argv[1:4]
    exports = exported(lib)
    in_map = map_globals(mapfile)
    in_headers = header_api(headers)
    problems = []
    for name in sorted(set(exports) - in_map):
        problems.append(f"exported but not in {mapfile}: {name}")
    for name in sorted(in_map - set(exports)):
        problems.append(f"in the map but not exported (missing GEN_API or definition?): {name}")
    for name in sorted(set(exports) - set(in_headers)):
        problems.append(f"exported but not declared with GEN_API in include/gen: {name}")
    for name in sorted(set(in_headers) - set(exports)):
        problems.append(f"declared GEN_API in {in_headers[name]} but not exported "
                        f"(add it to {mapfile}): {name}")
    for name, version in sorted(exports.items()):
        if not version.startswith("LIBGEN_"):
            problems.append(f"exported without a LIBGEN_* version node: {name}")
    non_gen = [n for n in exports if not n.startswith("gen_")]
    for name in sorted(non_gen):
        problems.append(f"exported symbol outside the gen_ namespace: {name}")
    print(f"{len(exports)} exports, {len(in_map)} map entries, {len(in_headers)} GEN_API declarations")
    if problems:
        print("\n".join(problems))
        print(f"0 passed, {len(problems)} failed")
        return 1
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
