#!/usr/bin/env bash
# followup's benchmarks, in one command: builds the release binary, installs postfix's
# smtp-sink and smtp-source, and wrk (the web scenario's load generator), from Debian's
# packages if they are missing, runs the scenarios (all, or those named) and writes
# bench/RESULTS.md.
#
#   bench/run.sh [throughput] [precision] [catch-up] [idle] [windows] [web] [postgres]
#
# `postgres` runs the PostgreSQL backend (one daemon, then three on one database) on a
# throwaway server, beside SQLite's throughput; postgresql is installed if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v smtp-sink >/dev/null || ! command -v smtp-source >/dev/null; then
    export PATH="$PATH:/usr/sbin"
fi
if ! command -v smtp-sink >/dev/null || ! command -v smtp-source >/dev/null; then
    echo "installing postfix for smtp-sink and smtp-source" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    # Only the test programs are used; the mail system itself stays unconfigured.
    echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postfix >/dev/null
fi
if ! command -v wrk >/dev/null; then
    echo "installing wrk" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null
fi
if { [ "$#" -eq 0 ] || [[ " $* " == *" postgres "* ]]; } \
    && ! command -v pg_config >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "installing postgresql" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
fi
command -v python3 >/dev/null || { echo "bench/run.sh needs python3" >&2; exit 1; }

cargo build --release --locked --quiet
exec python3 bench/bench.py "$@"
