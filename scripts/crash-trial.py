#!/usr/bin/env python3
"""The crash trial of scripts/crash-trial.sh (see there): SIGKILLs
`moe-run train` at random moments, a third of the time while a checkpoint
is being written, and checks after every kill and at the end of every run
that nothing was lost or left behind.

  crash-trial.py --moe-run BIN --package DIR --data CORPUS --work DIR [-n N]

A *chain* is one training run to --steps that is killed and resumed
(`--resume latest`) until it completes; its final checkpoint and metrics
must then equal those of the uninterrupted reference run. After each kill:
  * every visible step-* checkpoint loads (`moe-run eval --batches 1`);
  * the next resume continues it (the chain completes);
and at the end of each chain:
  * the final checkpoint's files are byte-identical to the reference's;
  * the metrics records are identical but for the timings and the
    checkpoints' directory (compare-metrics.py --records);
  * no .tmp-*, .damaged-*, .write-probe-* or *.rewrite is left, and the
    directory's lock is free.
Exits 1 on any failure.
"""
import argparse
import fcntl
import os
import random
import signal
import subprocess
import sys
import time

COMPARE_METRICS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                               "test", "Integration", "Inputs",
                               "compare-metrics.py")
LEFTOVER_PREFIXES = (".tmp-", ".damaged-", ".write-probe-")


class Trial:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.kills = 0
        self.during_write = 0
        self.after_rename = 0
        self.checkpoints_checked = 0
        self.checkpoints_loaded = 0
        self.chains = 0
        self.chains_identical = 0
        self.resumes_identical = 0
        self.leftovers = 0
        self.failures = []
        self.verified = {}  # checkpoint dir -> mtime of checkpoint.json

    def train_command(self, ckpt, metrics):
        a = self.args
        return [a.moe_run, "train", a.package, "--data", a.data,
                "--steps", str(a.steps), "--checkpoint-dir", ckpt,
                "--checkpoint-every", str(a.every), "--log-every", "5",
                "--eval-every", str(a.eval_every), "--eval-batches", "2",
                "--keep", "3", "--metrics", metrics, "--resume", "latest",
                "-q"]

    def fail(self, what):
        print("FAIL: " + what, flush=True)
        self.failures.append(what)

    def reference(self):
        """Runs the uninterrupted reference, timing how long each save's
        temporary directory is visible."""
        ckpt = os.path.join(self.args.work, "reference")
        metrics = ckpt + ".jsonl"
        start = time.monotonic()
        proc = subprocess.Popen(self.train_command(ckpt, metrics),
                                stdout=subprocess.DEVNULL)
        writes, since = [], None
        while proc.poll() is None:
            writing = bool(saves_in_progress(ckpt))
            now = time.monotonic()
            if writing and since is None:
                since = now
            elif not writing and since is not None:
                writes.append(now - since)
                since = None
            time.sleep(0.0002)
        self.duration = time.monotonic() - start
        if proc.returncode != 0:
            sys.exit("reference run failed (exit %d)" % proc.returncode)
        writes.sort()
        self.write_seconds = writes[len(writes) // 2] if writes else 0.01
        self.ref_ckpt = os.path.join(ckpt, "step-%08d" % self.args.steps)
        self.ref_metrics = metrics
        print("reference run: %d steps in %.2f s, a checkpoint every %d steps "
              "(%.1f ms each, median)" % (self.args.steps, self.duration,
                                          self.args.every,
                                          1000 * self.write_seconds),
              flush=True)

    def kill_one(self, proc, ckpt, at_write, stale):
        """Kills `proc` at a random moment, or as soon as a save's
        temporary directory (not one of `stale`, left by the previous kill)
        appears plus a random fraction of a save's time. Returns False when
        it finished first."""
        if at_write:
            deadline = time.monotonic() + 4 * self.duration + 10
            while proc.poll() is None and time.monotonic() < deadline:
                if saves_in_progress(ckpt) - stale:
                    # Anywhere in the save, or shortly after its rename.
                    time.sleep(self.rng.uniform(0, 1.2 * self.write_seconds))
                    break
                time.sleep(0.0002)
        else:
            time.sleep(self.rng.uniform(0, self.duration))
        if proc.poll() is not None:
            return False
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True

    def check_checkpoints(self, ckpt):
        """Every visible checkpoint loads (each verified once while it is
        unchanged)."""
        for name in sorted(listdir(ckpt)):
            if not name.startswith("step-"):
                continue
            path = os.path.join(ckpt, name)
            try:
                stamp = os.stat(os.path.join(path, "checkpoint.json")).st_mtime_ns
            except OSError:
                stamp = None
            self.checkpoints_checked += 1
            if stamp is not None and self.verified.get(path) == stamp:
                self.checkpoints_loaded += 1
                continue
            r = subprocess.run(
                [self.args.moe_run, "eval", self.args.package, "--data",
                 self.args.data, "--checkpoint", path, "--batches", "1", "-q"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if r.returncode == 0:
                self.checkpoints_loaded += 1
                self.verified[path] = stamp
            else:
                self.fail("%s does not load: %s" % (path, r.stderr.strip()))

    def finish_chain(self, ckpt, metrics, kills):
        """Compares a completed chain with the reference run and looks for
        anything left behind."""
        self.chains += 1
        ok = True
        final = os.path.join(ckpt, "step-%08d" % self.args.steps)
        for name in sorted(listdir(self.ref_ckpt)):
            if read(os.path.join(self.ref_ckpt, name)) != \
                    read(os.path.join(final, name)):
                self.fail("%s/%s differs from the uninterrupted run's"
                          % (final, name))
                ok = False
        compared = subprocess.run(
            [sys.executable, COMPARE_METRICS, "--records", self.ref_metrics,
             metrics], stdout=subprocess.PIPE, text=True)
        if compared.returncode != 0:
            self.fail("%s differs from the uninterrupted run's: %s"
                      % (metrics, compared.stdout.strip()))
            ok = False
        left = [n for n in listdir(ckpt) if n.startswith(LEFTOVER_PREFIXES)]
        left += [n for n in listdir(self.args.work) if n.endswith(".rewrite")]
        if left:
            self.leftovers += len(left)
            self.fail("%s: left behind: %s" % (ckpt, " ".join(sorted(left))))
            ok = False
        with open(os.path.join(ckpt, ".lock")) as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self.fail("%s/.lock is still held" % ckpt)
                ok = False
        if ok:
            self.chains_identical += 1
            self.resumes_identical += kills

    def run(self):
        self.reference()
        chain = 0
        while self.kills < self.args.n:
            chain += 1
            ckpt = os.path.join(self.args.work, "chain-%03d" % chain)
            metrics = ckpt + ".jsonl"
            kills = 0
            while True:
                stale = set(n for n in listdir(ckpt) if n.startswith(".tmp-"))
                proc = subprocess.Popen(self.train_command(ckpt, metrics),
                                        stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True)
                # A quarter of the kills aim at a checkpoint write; the
                # others land anywhere, start-up and writes included (a
                # third or more of all land in writes).
                at_write = self.rng.random() < 0.25
                killed = (self.kills < self.args.n and
                          self.kill_one(proc, ckpt, at_write, stale))
                if not killed:
                    err = proc.communicate()[1]
                    if proc.returncode != 0:
                        self.fail("%s: resumed run failed (exit %d): %s"
                                  % (ckpt, proc.returncode, err.strip()))
                        break
                    self.finish_chain(ckpt, metrics, kills)
                    break
                kills += 1
                self.kills += 1
                if self.args.verbose:
                    print("kill %d (%s): %s"
                          % (self.kills, "aimed at a write" if at_write
                             else "random", " ".join(sorted(listdir(ckpt)))),
                          flush=True)
                left = set(n for n in listdir(ckpt) if n.startswith(".tmp-"))
                if saves_in_progress(ckpt) - stale:
                    self.during_write += 1
                elif at_write or any("-removed-" in n for n in left - stale):
                    # After the save's rename: the checkpoint is visible,
                    # its run died pruning or in the steps after it.
                    self.after_rename += 1
                self.check_checkpoints(ckpt)
            if self.failures and self.args.stop_on_failure:
                break
        self.summary()
        return 1 if self.failures else 0

    def summary(self):
        print("crash trial: %d kills: %d during checkpoint writes, %d just "
              "after a checkpoint's rename, %d elsewhere"
              % (self.kills, self.during_write, self.after_rename,
                 self.kills - self.during_write - self.after_rename))
        print("  checkpoints visible after a kill that load: %d/%d"
              % (self.checkpoints_loaded, self.checkpoints_checked))
        print("  resumes ending identical to the uninterrupted run: %d/%d "
              "(%d/%d runs: final checkpoint and metrics)"
              % (self.resumes_identical, self.kills, self.chains_identical,
                 self.chains))
        print("  leftovers: %d" % self.leftovers)
        print("  failures: %d" % len(self.failures), flush=True)


def listdir(path):
    try:
        return os.listdir(path)
    except OSError:
        return []


def saves_in_progress(ckpt):
    """The temporary directories of checkpoint saves under `ckpt` (not
    those of checkpoints being removed)."""
    return set(n for n in listdir(ckpt)
               if n.startswith(".tmp-step-") and "-removed-" not in n)


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--moe-run", required=True)
    parser.add_argument("--package", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("-n", type=int, default=100, help="kills")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--every", type=int, default=20,
                        help="steps between checkpoints (a multiple of 5, "
                        "the steps between metrics records)")
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stop-on-failure", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="list the checkpoint directory after each kill")
    args = parser.parse_args()
    sys.exit(Trial(args).run())


if __name__ == "__main__":
    main()
