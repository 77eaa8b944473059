#!/usr/bin/env bash
# scripts/backends.sh up DIR | down DIR | env DIR | restart-pg DIR | stop-pg DIR | start-pg DIR | stop-s3 DIR | start-s3 DIR
#
# Starts (installing when needed) the scale-out backends on loopback with
# their state under DIR: PostgreSQL from Debian's `postgresql` package and a
# SeaweedFS S3 server (`weed`, built once from its Go module and cached).
# `up` prints shell assignments to eval:
#
#   REGIONFS_DEV_METADATA_URL=postgres://…/regionfs_{region}…
#   REGIONFS_DEV_BLOCKS_URL=s3://regionfs-{region}?endpoint=…
#
# (`regionfs dev` replaces {region} with each region's name: one database and
# one bucket per region, both created on first use.) `env` prints them again
# for running backends; `down` stops both. Progress goes to stderr.
#
# Environment: REGIONFS_WEED (path of a weed binary to use instead of the
# cached build), REGIONFS_CACHE (cache directory, default ~/.cache/regionfs).
set -euo pipefail

# The servers this starts outlive it: they must not inherit the caller's
# other descriptors (a lock a test runner holds, a pipe a caller reads to
# its end), or the caller's lock stays held and its reader waits for as
# long as they run. Everything but 0-2 (and bash's own 255) is closed.
for fd in /proc/$$/fd/*; do
  fd=${fd##*/}
  if [ "$fd" -gt 2 ] && [ "$fd" -lt 255 ]; then eval "exec $fd>&-"; fi
done

WEED_MODULE=github.com/seaweedfs/seaweedfs
WEED_VERSION=v0.0.0-20261109003541-7506e5f91cd6
S3_KEY=regionfs-dev
S3_SECRET=regionfs-dev-secret

log() { echo "backends: $*" >&2; }
die() { echo "backends: $*" >&2; exit 1; }

usage() { die "usage: $0 up DIR | down DIR | env DIR | restart-pg DIR | stop-pg DIR | start-pg DIR | stop-s3 DIR | start-s3 DIR"; }
[ $# -eq 2 ] || usage
cmd=$1
DIR=$(mkdir -p "$2" && cd "$2" && pwd)

# free_port VAR sets VAR to a loopback TCP port nothing listens on (and that
# this script has not handed out yet).
USED_PORTS=" "
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    case $USED_PORTS in *" $p "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      USED_PORTS="$USED_PORTS$p "
      printf -v "$1" %s "$p"
      return 0
    fi
  done
}

# --- PostgreSQL -------------------------------------------------------------

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  return 1
}

pg_install() {
  pg_bin >/dev/null && return 0
  log "installing PostgreSQL (Debian postgresql)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql) >&2 ||
    die "cannot install postgresql"
  pg_bin >/dev/null || die "postgresql installed but no initdb found"
}

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# PostgreSQL refuses to run as root: as root, the server runs as the
# postgres user, which must be able to reach DIR.
pg_reachable() {
  [ "$(id -u)" -eq 0 ] || return 0
  local p=$DIR
  while [ "$p" != / ]; do
    if ! runuser -u postgres -- test -x "$p"; then
      log "letting the postgres user traverse $p (chmod o+x)"
      chmod o+x "$p"
    fi
    p=$(dirname "$p")
  done
}

pg_up() {
  pg_install
  local bin port data=$DIR/pg
  bin=$(pg_bin)
  pg_reachable
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$data"
    chmod 700 "$data"
    as_postgres "$bin/initdb" -D "$data" -U regionfs --auth=trust -E UTF8 --no-locale >"$DIR/pg-initdb.log" 2>&1 ||
      { tail -5 "$DIR/pg-initdb.log" >&2; die "initdb failed"; }
  fi
  if [ -f "$DIR/pg.port" ] && as_postgres "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    return 0
  fi
  # A restart (start-pg) keeps the port, so that clients find the
  # database where it was.
  if [ -f "$DIR/pg.port" ]; then
    port=$(cat "$DIR/pg.port")
  else
    free_port port
    echo "$port" >"$DIR/pg.port"
  fi
  as_postgres "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$data -c max_connections=300 -c shared_buffers=128MB -c fsync=on" \
    start >&2 || { tail -20 "$data/server.log" >&2; die "PostgreSQL did not start"; }
}

pg_down() {
  local bin
  bin=$(pg_bin) || return 0
  [ -f "$DIR/pg/PG_VERSION" ] || return 0
  as_postgres "$bin/pg_ctl" -D "$DIR/pg" -m fast -w stop >&2 2>/dev/null || true
}

# --- SeaweedFS S3 -----------------------------------------------------------

weed_bin() {
  if [ -n "${REGIONFS_WEED:-}" ]; then
    [ -x "$REGIONFS_WEED" ] || die "REGIONFS_WEED=$REGIONFS_WEED is not executable"
    echo "$REGIONFS_WEED"
    return 0
  fi
  local cache=${REGIONFS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/regionfs}
  local bin=$cache/weed-$WEED_VERSION
  if [ ! -x "$bin" ]; then
    command -v go >/dev/null || die "go is needed to build the S3 server"
    mkdir -p "$cache"
    log "building SeaweedFS weed $WEED_VERSION from the Go module (once; cached in $cache)"
    local t0=$SECONDS src
    # Its go.mod has replace directives, so `go install mod@version` is
    # refused: build inside the downloaded module instead.
    src=$(GOFLAGS=-mod=mod go mod download -json "$WEED_MODULE@$WEED_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') ||
      die "cannot download $WEED_MODULE@$WEED_VERSION"
    (cd "$src" && GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$bin.tmp" ./weed) >&2 ||
      die "building weed failed"
    mv "$bin.tmp" "$bin"
    log "built weed in $((SECONDS - t0)) s"
  fi
  echo "$bin"
}

s3_up() {
  local bin port
  bin=$(weed_bin)
  if [ -f "$DIR/s3.pid" ] && kill -0 "$(cat "$DIR/s3.pid")" 2>/dev/null; then
    return 0
  fi
  mkdir -p "$DIR/s3/data"
  cat >"$DIR/s3/identities.json" <<EOF
{"identities": [{"name": "regionfs", "credentials": [{"accessKey": "$S3_KEY", "secretKey": "$S3_SECRET"}],
  "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
EOF
  # The command line is kept, so that a restart (start-s3) reuses the
  # ports and the data.
  if [ ! -f "$DIR/s3/args" ]; then
    local mport vport fport mgrpc vgrpc fgrpc sgrpc
    free_port port; free_port mport; free_port vport; free_port fport
    free_port mgrpc; free_port vgrpc; free_port fgrpc; free_port sgrpc
    echo "$port" >"$DIR/s3.port"
    # One process: master, volume server, filer and S3 gateway, all on
    # loopback.
    # -logdir: weed's own log files go beside its data, not into /tmp.
    # master.toml: a bucket is a collection, and the master grows each
    # collection by 7 volumes at once by default: -volume.max volumes
    # allowed ~40 buckets, fewer than a full test run makes. Grow by 2,
    # allow 2000 (a volume is two small files until it is written).
    printf '[master.volume_growth]\ncopy_1 = 2\n' >"$DIR/s3/master.toml"
    printf '%s\n' -logdir="$DIR/s3" -config_dir="$DIR/s3" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$DIR/s3/data" \
      -master.port="$mport" -master.port.grpc="$mgrpc" \
      -volume.port="$vport" -volume.port.grpc="$vgrpc" -volume.max=2000 -master.volumeSizeLimitMB=256 \
      -filer -filer.port="$fport" -filer.port.grpc="$fgrpc" \
      -s3 -s3.port="$port" -s3.port.grpc="$sgrpc" -s3.config="$DIR/s3/identities.json" >"$DIR/s3/args"
  fi
  port=$(cat "$DIR/s3.port")
  local t0=$SECONDS args
  mapfile -t args <"$DIR/s3/args"
  setsid "$bin" "${args[@]}" >>"$DIR/s3/server.log" 2>&1 </dev/null &
  echo $! >"$DIR/s3.pid"
  # Up means writable: the gateway answers, and its master leads and
  # assigns a file id (right after a restart, the master is not the raft
  # leader yet, and uploads fail with 500 for many seconds).
  local mport
  mport=$(sed -n 's/^-master\.port=//p' "$DIR/s3/args")
  for _ in $(seq 1 1200); do
    if curl -s -o /dev/null "http://127.0.0.1:$port/status" 2>/dev/null &&
      [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/" 2>/dev/null)" != 000 ] &&
      curl -s "http://127.0.0.1:$mport/dir/assign" 2>/dev/null | grep -q '"fid"'; then
      log "S3 server up on 127.0.0.1:$port in $((SECONDS - t0)) s"
      return 0
    fi
    kill -0 "$(cat "$DIR/s3.pid")" 2>/dev/null || { tail -20 "$DIR/s3/server.log" >&2; die "S3 server exited"; }
    sleep 0.1
  done
  tail -20 "$DIR/s3/server.log" >&2
  die "S3 server did not answer within 120 s"
}

s3_down() {
  [ -f "$DIR/s3.pid" ] || return 0
  local pid
  pid=$(cat "$DIR/s3.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$DIR/s3.pid"
}

print_env() {
  local pg s3
  pg=$(cat "$DIR/pg.port")
  s3=$(cat "$DIR/s3.port")
  echo "REGIONFS_DEV_METADATA_URL='postgres://regionfs@127.0.0.1:$pg/regionfs_{region}?sslmode=disable'"
  echo "REGIONFS_DEV_BLOCKS_URL='s3://regionfs-{region}?endpoint=http://127.0.0.1:$s3&region=us-east-1&access_key_id=$S3_KEY&secret_access_key=$S3_SECRET'"
  echo "export REGIONFS_DEV_METADATA_URL REGIONFS_DEV_BLOCKS_URL"
}

pg_restart() {
  local bin
  bin=$(pg_bin)
  # -l: the restarted server logs to its file. Without it, it would keep
  # this script's stdout and stderr open, and a caller reading them (a
  # test's exec.Cmd.CombinedOutput) would wait for as long as it runs.
  as_postgres "$bin/pg_ctl" -D "$DIR/pg" -l "$DIR/pg/server.log" -m fast -w -t 60 restart >&2 || die "PostgreSQL did not restart"
}

case $cmd in
restart-pg) pg_restart ;;       # for outage tests: a fast restart (connections cut)
stop-pg) pg_down ;;             # for outage tests: the database goes away for as long as the test wants…
start-pg) pg_up ;;              # …and comes back on the same port with its data
stop-s3) s3_down ;;             # for outage tests: the object store goes away…
start-s3) s3_up ;;              # …and comes back with its data
up)
  pg_up
  s3_up
  print_env
  ;;
env) print_env ;;
down)
  s3_down
  pg_down
  ;;
*) usage ;;
esac
