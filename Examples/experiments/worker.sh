#!/bin/bash
# Takes jobs (the arguments of run1.sh, one job a line) from runs/exp/queue.txt until it is empty or
# runs/exp/STOP exists. Two workers at most (the machine is shared).
cd "$(dirname "$0")/../.."
while [ ! -e runs/exp/STOP ]; do
    job=$(flock runs/exp/queue.lock bash -c 'l=$(head -n1 runs/exp/queue.txt); [ -n "$l" ] && sed -i 1d runs/exp/queue.txt; echo "$l"')
    [ -z "$job" ] && break
    Examples/experiments/run1.sh $job
done
