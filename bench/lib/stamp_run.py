#!/usr/bin/python3
"""Runs a command and timestamps each line of its stdout as it arrives.

    stamp_run.py OUT.json -- COMMAND ARGS...

OUT.json: {"start": t, "end": t, "code": n, "lines": [[t, line], ...]} with
t = time.time() (the wall clock, comparable with the container's: no time
namespace). stderr is passed through.
"""

import json
import subprocess
import sys
import time


def main():
    out = sys.argv[1]
    argv = sys.argv[sys.argv.index("--") + 1:]
    start = time.time()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, bufsize=1)
    lines = []
    for line in proc.stdout:
        lines.append([time.time(), line.rstrip("\n")])
    code = proc.wait()
    end = time.time()
    with open(out, "w") as f:
        json.dump({"argv": argv, "start": start, "end": end, "code": code, "lines": lines}, f)
    sys.exit(code)


if __name__ == "__main__":
    main()
