"""Peak memory of `tuilab data import` on a large prompt file: the import streams, so it stays flat.

    python bench/import_memory.py [--lines 1000000] [--keep DIR]

Writes an N-line prompts JSONL (about 100 bytes a line), imports it into a new
lab with the real command in a child process, and prints the child's peak
resident set size (ru_maxrss) next to the file's size and the same figure for
a 1/10-size file: streaming shows as a peak that does not grow with the file.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_prompts(path: Path, n: int) -> None:
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({"prompt": f"Question {i}: explain how item {i} relates to the number "
                                           f"{i * 7919 % 100003} in two sentences."}) + "\n")


def peak_import(work: Path, n: int) -> tuple[int, float, int]:
    """(peak RSS in KiB of the import process, seconds, file bytes)."""
    data = work / f"prompts_{n}.jsonl"
    write_prompts(data, n)
    home = work / f"lab_{n}"
    script = (
        "import resource, subprocess, sys;"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);"
        "sys.exit(r.returncode)"
    )
    start = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", script, sys.executable, "-m", "tuilab", "--home", str(home), "data", "import",
         str(data)],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), check=True,
    )
    return int(out.stdout.split()[-1]), time.monotonic() - start, data.stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--keep", help="work here and keep the files (default: a temporary folder)")
    args = parser.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="tuilab-import-mem-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in (args.lines // 10, args.lines):
        kib, secs, size = peak_import(work, n)
        rows.append((n, size, kib, secs))
        print(f"{n:>9,} lines ({size / 2**20:6.1f} MiB file): peak RSS {kib / 1024:6.1f} MiB, {secs:6.1f} s",
              flush=True)
    (n1, s1, k1, _), (n2, s2, k2, _) = rows
    print(f"file {s2 / s1:.1f}x larger, peak RSS {k2 / k1:.2f}x "
          f"(self {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB for the bench itself)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
