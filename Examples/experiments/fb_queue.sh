#!/bin/bash
# Issue 21, feedback variants: runs "NAME SEED FLAGS..." lines from stdin through fb_run.sh, two at a time, after the
# process WAIT_PID (another driver) has ended. usage: TRAINER=... fb_queue.sh OUT_DIR [WAIT_PID] < jobs
set -u
out=$1
while [ -n "${2:-}" ] && kill -0 "$2" 2>/dev/null; do sleep 5; done
echo "$(date -u +%FT%TZ) queue start: commit $(git rev-parse HEAD), trainer $TRAINER ($(sha256sum "$TRAINER" | cut -c1-16))" >>"$out/log.txt"
xargs -P 2 -L 1 bash -c 'Examples/experiments/fb_run.sh "$0" "$1" "$2" --eval-every 1500 ${@:3}' "$out"
echo "$(date -u +%FT%TZ) queue end" >>"$out/log.txt"
