#!/usr/bin/env python3
"""Compile every public header alone, as C99 -pedantic -Werror and as C++.

A header that relies on another being included first, uses a C11-only or GNU
construct, or is not C++-clean fails here.
Usage: check_headers.py --cc CMD --cxx CMD -I DIR [-I DIR...] HEADER...
"""
import argparse
import os
import shlex
import subprocess
import sys
import tempfile

C_FLAGS = ["-std=c99", "-pedantic", "-Werror", "-Wall", "-Wextra", "-Wstrict-prototypes",
           "-fsyntax-only"]
CXX_FLAGS = ["-std=c++11", "-pedantic", "-Werror", "-Wall", "-Wextra", "-fsyntax-only"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cc", required=True)
    ap.add_argument("--cxx", required=True)
    ap.add_argument("-I", dest="includes", action="append", default=[])
    ap.add_argument("headers", nargs="+")
    args = ap.parse_args()
    inc = [f"-I{d}" for d in args.includes]
    failures = 0
    passed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for header in args.headers:
            name = os.path.basename(header)
            for lang, compiler, flags, ext in (("C99", args.cc, C_FLAGS, "c"),
                                               ("C++", args.cxx, CXX_FLAGS, "cpp")):
                src = os.path.join(tmp, f"one.{ext}")
                with open(src, "w") as f:
                    # Twice: include guards must hold.
                    f.write(f"#include <gen/{name}>\n#include <gen/{name}>\n")
                    f.write("int main(void) { return 0; }\n" if ext == "c" else
                            "int main() { return 0; }\n")
                cmd = shlex.split(compiler) + flags + inc + [src]
                r = subprocess.run(cmd, capture_output=True, text=True)
                if r.returncode != 0:
                    failures += 1
                    print(f"FAIL {name} as {lang}:\n{r.stderr}")
                else:
                    passed += 1
                    print(f"ok   {name} as {lang}")
    print(f"{passed} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
