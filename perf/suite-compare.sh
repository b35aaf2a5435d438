#!/bin/sh
# perf/suite-compare.sh OURS ORIG: runs perf/suite built against this
# library (OURS) and the same source built against the original libdill
# (ORIG), one after the other, and prints each figure's ratio ours/original (time;
# the target is at most 0.70).
set -e
ours=$1 orig=$2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$ours" >"$out/ours"
"$orig" >"$out/orig"
awk -F': ' '
    NR == FNR { sub(/ ns\/op/, "", $2); ours[$1] = $2; next }
    { sub(/ ns\/op/, "", $2)
      printf "%s_ratio: %.2f (ours %s ns / libdill %s ns; target <= 0.70)%s\n",
          $1, ours[$1] / $2, ours[$1], $2, (ours[$1] / $2 <= 0.70 ? "" : " MISSED") }
' "$out/ours" "$out/orig"
