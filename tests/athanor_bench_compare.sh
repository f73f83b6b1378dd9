#!/usr/bin/env bash
# athanor-bench --json then --compare: the same run compares with no note and keeps every test;
# a file of another machine or another database is named as such (its ratios are not
# comparable at the 15% the comparison flags); an unreadable file is reported, not a crash;
# the memory probe (run in a child process) reports its figures.
# Usage: athanor_bench_compare.sh PATH/TO/athanor-bench WORK_DIR [plain|sanitized]
# (sanitized: a sanitizer's allocator may keep no heap statistics; the probe then says so)
set -euo pipefail
bench=$1 dir=$2 build=${3:-plain}
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
fail() { echo "FAIL: $*" >&2; exit 1; }
run() { "$bench" --suite short_selects -n 200 --repeat 1 --warmup 0 "$@" 2>/dev/null; }
run --json base.json > /dev/null
grep -q '"machine": "' base.json || fail "the JSON names no machine"
grep -q '"db": "file"' base.json || fail "the JSON names no database"

run --compare base.json > same.txt
grep -q "compared with base.json" same.txt || fail "no comparison printed"
grep -q "note:" same.txt && fail "a note for a file of this machine and database"
grep -Eq "short_selects +orm_get +[0-9.]+x \(was +[0-9.]+x\)" same.txt || fail "orm_get not compared"

sed 's/"machine": "[^"]*"/"machine": "Another CPU, 64 cores, Linux 1.0"/' base.json > other_machine.json
run --compare other_machine.json > machine.txt
grep -q "note: that file is of another machine (Another CPU, 64 cores, Linux 1.0; this run: " machine.txt ||
    fail "another machine not named"
grep -q "another database" machine.txt && fail "a database note for the same database"

run --db memory --compare base.json > db.txt
grep -q "note: that file is of another database (file; this run: memory)" db.txt || fail "another database not named"

echo "not json" > broken.json
"$bench" --suite short_selects -n 200 --repeat 1 --warmup 0 --compare broken.json > /dev/null 2> broken.txt ||
    fail "an unreadable file ended the run"
grep -q -- "--compare: cannot read broken.json" broken.txt || fail "an unreadable file not reported"
# The memory probe runs in a child process: its figures still reach the output and the JSON.
"$bench" --suite large_resultsets -n 200 --repeat 1 --warmup 0 --json memory.json > memory.txt 2>/dev/null ||
    fail "the large_resultsets run failed"
if [ "$build" = sanitized ]; then
    grep -Eq "memory: (not measured \(this build's allocator keeps no heap statistics\)|a session holding 200 customers)" memory.txt ||
        fail "the probe did not report back"
else
    grep -Eq "memory: a session holding 200 customers: [0-9]+ bytes per object in all = [1-9][0-9]* for the object \+ [1-9][0-9]* of session" memory.txt ||
        fail "no memory figures printed"
    grep -Eq '"memory_session_bytes_per_object": [1-9]' memory.json || fail "no memory figure in the JSON"
fi
echo "bench compare: ok"
