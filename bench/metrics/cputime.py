#!/usr/bin/env python3
# cputime.py OUT CMD...: runs CMD, writes "user system wall" seconds (getrusage of the child,
# microsecond resolution; /usr/bin/time rounds to 10 ms) to OUT, exits with CMD's status.
import os, subprocess, sys, time
out, cmd = sys.argv[1], sys.argv[2:]
t0 = time.monotonic()
p = subprocess.Popen(cmd)
_, status, ru = os.wait4(p.pid, 0)
wall = time.monotonic() - t0
with open(out, "w") as f:
    f.write(f"{ru.ru_utime:.6f} {ru.ru_stime:.6f} {wall:.6f}\n")
sys.exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)
