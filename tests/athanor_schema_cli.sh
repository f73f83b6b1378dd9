#!/usr/bin/env bash
# athanor-schema end to end on a SQLite file holding rows: reflect, edit the JSON, diff, a dry
# run that changes nothing, upgrade (safe part, then with --allow-data-loss), errors.
# Usage: athanor_schema_cli.sh PATH/TO/athanor-schema WORK_DIR
set -euo pipefail
tool=$1 dir=$2
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
fail() { echo "FAIL: $*" >&2; exit 1; }
sqlite3 app.db "CREATE TABLE users (id INTEGER NOT NULL, name VARCHAR(50) NOT NULL, fullname VARCHAR(100), PRIMARY KEY (id));
                INSERT INTO users VALUES (1, 'ed', 'Ed Jones'), (2, 'wendy', NULL);"
url="sqlite:///$dir/app.db"
"$tool" reflect "$url" > v1.json
grep -q '"name": "fullname"' v1.json || fail "reflect lacks a column"
"$tool" diff "$url" v1.json | grep -q "the database matches" || fail "diff of the same schema"
# v2: name widened, fullname dropped, nickname and a table added
cat > v2.json <<'JSON'
{"athanor_schema": 1, "tables": [
  {"name": "users", "columns": [
    {"name": "id", "type": "Integer", "primary_key": true, "nullable": false},
    {"name": "name", "type": "String", "length": 80, "nullable": false},
    {"name": "nickname", "type": "String", "length": 30, "nullable": true}]},
  {"name": "tags", "columns": [{"name": "id", "type": "Integer", "primary_key": true, "nullable": false}]}]}
JSON
set +e
"$tool" diff "$url" v2.json > diff.txt; rc=$?
set -e
[ "$rc" = 1 ] || fail "diff exit status $rc, expected 1"
grep -q "drop column users.fullname" diff.txt || fail "diff does not show the drop"
grep -q "DROP TABLE users" diff.txt || fail "diff does not show the rebuild SQL"
"$tool" upgrade "$url" v2.json --dry-run > dry.txt
[ "$(sqlite3 app.db "SELECT count(*) FROM sqlite_master WHERE name = 'tags'")" = 0 ] || fail "dry run changed the database"
"$tool" upgrade "$url" v2.json > up.txt
grep -q "left out, they lose data" up.txt || fail "upgrade did not report the deferred drop"
[ "$(sqlite3 app.db "SELECT count(*) FROM users")" = 2 ] || fail "rows lost"
[ "$(sqlite3 app.db "SELECT fullname FROM users WHERE id = 1")" = "Ed Jones" ] || fail "dropped without --allow-data-loss"
"$tool" upgrade "$url" v2.json --allow-data-loss > up2.txt
"$tool" diff "$url" v2.json | grep -q "the database matches" || fail "not upgraded"
[ "$(sqlite3 app.db "SELECT name FROM users WHERE id = 2")" = "wendy" ] || fail "values lost"
set +e
"$tool" diff "$url" missing.json 2> err.txt; rc=$?
set -e
[ "$rc" = 2 ] && grep -q "cannot read missing.json" err.txt || fail "a missing file is not a clear error"
echo "athanor-schema cli ok"
