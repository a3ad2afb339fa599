#!/usr/bin/env bash
# Runs cordonvet over the public modules of testdata/realcode/modules.txt
# (fetched through the module proxy at their pinned versions, not vendored)
# and checks every finding against testdata/realcode/judged.txt.
set -euo pipefail
cd "$(dirname "$0")"
CORDONVET_REALCODE=1 go test -count=1 -run '^TestRealCode$' -v . 2>&1 | grep -E -v '^=== (RUN|PAUSE|CONT)'
