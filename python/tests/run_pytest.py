#!/usr/bin/env python3
"""Run the binding's pytest suite against one build of libgen.

usage: run_pytest.py [--require-pytest] LIBGEN_SO [pytest args...]

Exit codes are made unambiguous for CI:
  - pytest's 5 ("no tests collected") becomes 1 with a message: an empty or
    broken test folder must never pass, and never fail without saying why;
  - a run in which no test passed (everything skipped) is 1 as well;
  - pytest not installed: 77 (meson shows SKIP) or, with --require-pytest
    (scripts/test, which installs pytest in .venv), 1.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


class Counter:
    def __init__(self):
        self.passed = 0

    def pytest_runtest_logreport(self, report):
        if report.when == "call" and report.passed:
            self.passed += 1


def main(argv):
    require = "--require-pytest" in argv
    argv = [a for a in argv if a != "--require-pytest"]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    os.environ["LIBGEN_LIBRARY"] = os.path.abspath(argv[0])
    try:
        import pytest
    except ImportError:
        print("pytest is not installed for " + sys.executable +
              " (scripts/setup-env.sh installs it into .venv)", file=sys.stderr)
        return 1 if require else 77
    counter = Counter()
    rc = pytest.main(["-q", "-rs", "-p", "no:cacheprovider", HERE, *argv[1:]],
                     plugins=[counter])
    if rc == 5:
        print(f"pytest collected no tests in {HERE}: the suite is missing or broken",
              file=sys.stderr)
        return 1
    if rc == 0 and counter.passed == 0:
        print("pytest ran but no test passed (all skipped?)", file=sys.stderr)
        return 1
    return int(rc)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
