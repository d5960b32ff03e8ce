#!/bin/bash
# Issue 21, feedback variants: runs "NAME SEED FLAGS..." lines from stdin through fb_run.sh, each as soon as fewer
# than two trainers of TRAINER run (this queue's or another driver's), so that at most two run at a time.
# usage (from the worktree's root): TRAINER=... Examples/experiments/fb_queue.sh OUT_DIR [AFTER] < jobs
# AFTER: a path to wait for first (another driver's last run folder: it starts no run after that one).
set -u
out=$1
while [ -n "${2:-}" ] && [ ! -e "$2" ]; do sleep 5; done
running() { pgrep -f -c -- "^nice -n 19 $TRAINER train|^$TRAINER train" || true; }
echo "$(date -u +%FT%TZ) queue start: commit $(git rev-parse HEAD), trainer $TRAINER ($(sha256sum "$TRAINER" | cut -c1-16))" >>"$out/log.txt"
while read -r name seed flags; do
    while [ "$(running)" -ge 2 ]; do sleep 5; done
    # shellcheck disable=SC2086 # the flags are words
    Examples/experiments/fb_run.sh "$out" "$name" "$seed" --eval-every 1500 $flags &
    sleep 5 # the run's trainer is up before the next count
done
wait
echo "$(date -u +%FT%TZ) queue end" >>"$out/log.txt"
