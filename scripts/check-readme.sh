#!/usr/bin/env bash
# scripts/check-readme.sh [FILE.md...]
#
# Runs the README's walkthrough top to bottom as a new user would: in a
# fresh copy of the repository (its tracked files, as a clone has them) with
# an empty data directory, it builds ./regionfs, starts `./regionfs dev`
# (what the README's first command, `go run ./cmd/regionfs dev`, runs) and
# runs every console block marked <!-- doccheck --> with test/doccheck,
# which compares each command's output with the README's by shape
# (`go doc ./test/doccheck`). Other files (docs/*.md) can be given instead.
#
# It needs bash, git, go, the aws CLI and Debian's libnfs-utils (nfs-cp,
# nfs-cat). regionfs dev binds the standard dev addresses (127.0.0.1:7070,
# 127.1.0.1:7070, 127.2.0.1:7070, mount targets on port 12049): where others
# may run it too, take the ports lock:
#
#   flock /work/.ports.lock scripts/check-readme.sh
#
# CI (.ci/run) runs it after the tests. Environment:
# REGIONFS_DOCCHECK_KEEP=1 keeps the copy and dev's log for a look.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(README.md)
for t in bash git go aws nfs-cp nfs-cat; do
  command -v "$t" >/dev/null || { echo "check-readme: $t is needed" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/regionfs-readme.XXXXXX")
dev=
cleanup() {
  if [ -n "$dev" ] && kill -0 "$dev" 2>/dev/null; then
    kill -TERM "$dev"; wait "$dev" || true
  fi
  if [ "${REGIONFS_DOCCHECK_KEEP:-}" = 1 ]; then
    echo "check-readme: kept $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

# A fresh clone: the tracked files as they are in the working tree.
(cd "$root" && git ls-files -z | while IFS= read -r -d '' f; do
  [ -e "$f" ] && printf '%s\0' "$f"
done | xargs -0 cp --parents -t "$work")
cd "$work"
go build -o regionfs ./cmd/regionfs
go build -o "$work/.doccheck" ./test/doccheck

# The README's first command, in its own "shell".
./regionfs dev >dev.log 2>&1 &
dev=$!
for _ in $(seq 300); do
  [ -f regionfs-data/env.sh ] && (exec 3<>/dev/tcp/127.0.0.1/7070) 2>/dev/null && break
  kill -0 "$dev" 2>/dev/null || { cat dev.log >&2; echo "check-readme: regionfs dev exited" >&2; exit 1; }
  sleep 0.2
done
[ -f regionfs-data/env.sh ] || { cat dev.log >&2; echo "check-readme: regionfs dev not ready after 60 s" >&2; exit 1; }

# The commands run with a clean AWS environment, as in a new shell.
if ! env -u AWS_PROFILE -u AWS_DEFAULT_PROFILE -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
  AWS_CONFIG_FILE="$work/.aws-config" AWS_SHARED_CREDENTIALS_FILE="$work/.aws-credentials" AWS_PAGER= \
  "$work/.doccheck" -dir "$work" "${files[@]}"; then
  echo "check-readme: regionfs dev's log: $work/dev.log (REGIONFS_DOCCHECK_KEEP=1 keeps it)" >&2
  tail -n 40 dev.log >&2
  exit 1
fi
