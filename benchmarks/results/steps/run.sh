#!/bin/bash
# Before/after series: the same harness (this worktree's benchmarks/) over the src of each commit.
cd /work/wt/bench
for c in d554fbb f5c37d9 40891a9 eac6f7f 5acb008; do
  rm -rf /tmp/steps/$c && mkdir -p /tmp/steps/$c
  git archive $c src | tar -x -C /tmp/steps/$c
  echo "== $c $(uptime)"
  PYTHONPATH=/tmp/steps/$c/src python benchmarks/run.py verify.RS256 verify.HS256 growth.token-size --rounds 9 --out /tmp/steps --name step-$c
done
echo done
