#!/usr/bin/env bash
# Runs every test (what CI runs). Database tests use $AUDIT_TEST_DB, or a private throwaway PostgreSQL
# cluster started from the local binaries; PostgreSQL is installed with apt-get when missing (as root).
# ./test.sh --fast: only the tests that need no database (no trait Category=Database), for the inner loop.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

filter=()
if [ "${1:-}" = "--fast" ]; then
  filter=(--filter "Category!=Database")
  shift
fi

have_pg() {
  [ -n "${AUDIT_PG_BIN:-}" ] && [ -x "$AUDIT_PG_BIN/initdb" ] && return 0
  command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1 && return 0
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

if [ ${#filter[@]} -eq 0 ] && [ -z "${AUDIT_TEST_DB:-}" ] && ! have_pg; then
  if [ "$(id -u)" = 0 ]; then
    echo "test.sh: installing PostgreSQL server binaries (apt-get)..."
    # Binaries only: no system cluster is created or used.
    mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
  else
    echo "test.sh: no PostgreSQL binaries found; run as root once, or: sudo apt-get install -y postgresql, or set AUDIT_TEST_DB" >&2
    exit 1
  fi
fi

# Debian's Chromium for the web UI's browser tests (Playwright cannot download its own browser here);
# without it those tests skip and say why.
if [ -z "${AUDIT_CHROMIUM:-}" ] && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "test.sh: installing Chromium for the web UI's browser tests (apt-get)..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
      || echo "test.sh: could not install chromium; the browser tests will skip" >&2
  else
    echo "test.sh: no /usr/bin/chromium; the web UI's browser tests will skip (sudo apt-get install -y chromium)" >&2
  fi
fi

# The probe VMM of the capture test (it runs where /dev/kvm exists; elsewhere the test says why it skips).
if [ -e /dev/kvm ] && command -v gcc >/dev/null 2>&1; then
  mkdir -p .build
  gcc -O1 -Wall -Wextra -Werror -o .build/probe_vmm tests/probe/probe_vmm.c
fi

dotnet build Audit.sln -warnaserror -nologo -v q
log="$(mktemp)"
set +e
dotnet test Audit.sln --no-build -nologo "${filter[@]}" --logger "console;verbosity=normal" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
# One plain closing line: "tests: N passed, N failed, N skipped".
total="$(grep -E '^\s*Total tests: *[0-9]+' "$log" | tail -n1 | grep -oE '[0-9]+' || true)"
if [ -n "$total" ]; then
  passed="$(grep -E '^\s*Passed: *[0-9]+' "$log" | tail -n1 | grep -oE '[0-9]+' || echo 0)"
  failed="$(grep -E '^\s*Failed: *[0-9]+' "$log" | tail -n1 | grep -oE '[0-9]+' || echo 0)"
  skipped="$(grep -E '^\s*Skipped: *[0-9]+' "$log" | tail -n1 | grep -oE '[0-9]+' || echo 0)"
  echo "tests: ${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
fi
rm -f "$log"
exit "$rc"
