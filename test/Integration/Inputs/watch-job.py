#!/usr/bin/env python3
"""Runs a (multi-rank) job and reports how it ended: its exit status, the
seconds it took, and what it printed (stdout and stderr, after a line
"--- output"). With --kill-rank R, it SIGKILLs rank R once training is under
way (the --metrics file has a training record) and times the job's end
from the kill.

  watch-job.py --within S [--kill-rank R --metrics FILE] -- mpirun ... moe-run ...

The rank's process is the moe-run whose environment has
OMPI_COMM_WORLD_RANK=R (or PMI_RANK=R) and whose command line names FILE.
Exits 1 (printing "FAIL: ...") when the job does not end within S seconds
(it is then killed: a hang), when training never started, or when the
rank was not found; the tests check the exit status and the output.
"""
import argparse
import os
import signal
import subprocess
import sys
import time


def find_rank(rank, marker):
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmdline = f.read().split(b"\0")
            with open("/proc/%s/environ" % pid, "rb") as f:
                environ = f.read().split(b"\0")
        except OSError:
            continue
        if not cmdline or not cmdline[0].endswith(b"moe-run"):
            continue
        if marker.encode() not in cmdline:
            continue
        wanted = [b"OMPI_COMM_WORLD_RANK=%d" % rank, b"PMI_RANK=%d" % rank]
        if any(w in environ for w in wanted):
            return int(pid)
    return None


def training_started(metrics):
    try:
        with open(metrics) as f:
            return any('"loss"' in line for line in f)
    except OSError:
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--within", type=float, required=True)
    parser.add_argument("--kill-rank", type=int)
    parser.add_argument("--metrics")
    parser.add_argument("--start-timeout", type=float, default=300,
                        help="seconds to wait for training to start")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    # Its own process group, so that a hung job is killed whole.
    job = subprocess.Popen(command, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)
    start = time.monotonic()
    if args.kill_rank is not None:
        deadline = start + args.start_timeout
        while not training_started(args.metrics):
            if job.poll() is not None or time.monotonic() > deadline:
                os.killpg(job.pid, signal.SIGKILL)
                print("FAIL: training never started (exit %s):\n%s"
                      % (job.returncode, job.communicate()[0]))
                sys.exit(1)
            time.sleep(0.05)
        pid = find_rank(args.kill_rank, args.metrics)
        if pid is None:
            os.killpg(job.pid, signal.SIGKILL)
            print("FAIL: rank %d not found:\n%s"
                  % (args.kill_rank, job.communicate()[0]))
            sys.exit(1)
        os.kill(pid, signal.SIGKILL)
        start = time.monotonic()
    try:
        output = job.communicate(timeout=args.within)[0]
    except subprocess.TimeoutExpired:
        os.killpg(job.pid, signal.SIGKILL)
        output = job.communicate()[0]
    seconds = time.monotonic() - start
    print("exit status %d after %.1f s" % (job.returncode, seconds))
    print("--- output")
    print(output, end="")
    if seconds > args.within:
        print("FAIL: the job did not end within %g s" % args.within)
        sys.exit(1)


if __name__ == "__main__":
    main()
