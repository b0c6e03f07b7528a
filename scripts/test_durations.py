"""Record how long each test file takes, for the order `make test` hands files to its workers.

Reads the output of a pytest run made with `--durations=0` (setup, call and teardown lines) and
writes `tests/file_durations.json`: seconds per test file, longest first. tests/conftest.py sorts
the files by it, so pytest-xdist starts the longest files first and the short ones fill the end.
Refresh it after adding a slow test file:

    make test PYTEST_ARGS="-n 2 --dist loadfile --no-loadscope-reorder --durations=0" | tee run.log
    .venv/bin/python scripts/test_durations.py run.log
"""

import argparse
import collections
import json
import re
from pathlib import Path

LINE = re.compile(r"^([\d.]+)s (?:setup|call|teardown)\s+([^:\s]+)::")
OUTPUT = Path(__file__).resolve().parent.parent / "tests" / "file_durations.json"


def file_durations(lines):
    totals = collections.Counter()
    for line in lines:
        match = LINE.match(line)
        if match:
            totals[match[2]] += float(match[1])
    return {path: round(seconds, 1) for path, seconds in totals.most_common()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path, help="output of a pytest run with --durations=0")
    options = parser.parse_args()
    durations = file_durations(options.log.read_text(errors="replace").splitlines())
    if not durations:
        raise SystemExit("no --durations=0 lines in that log")
    OUTPUT.write_text(json.dumps(durations, indent=0) + "\n")
    print(f"{len(durations)} files, {sum(durations.values()):.0f} s in all -> {OUTPUT}")


if __name__ == "__main__":
    main()
