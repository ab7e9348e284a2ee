#!/usr/bin/env bash
# Build the Mailroom image with Debian's own tools and smoke-check it: no Docker engine and no
# registry needed. `make image` runs it from the repository root.
#
#   deploy/build-image.sh [--tag TAG] [--base IMAGE] [--git REV] [--no-smoke]
#
# The working tree is built, or with --git the committed tree of REV (a release tag, HEAD),
# so uncommitted edits never reach a release image.
#
# 1. Base: without --base, mmdebstrap makes a Debian bookworm root file system (python3,
#    python3-venv, ca-certificates) from the Debian mirror, imported as
#    localhost/mailroom-base:bookworm (made once; delete that image to remake it).
# 2. Build: podman (buildah inside) builds deploy/Dockerfile with BASE set to that image, in
#    docker format so the HEALTHCHECK is kept. Python packages come from PyPI; the host's CA
#    bundle goes in as a build secret, so a TLS-inspecting proxy that the host trusts works.
# 3. Smoke: each service (config, fetcher, processor, sender, and the image's default command,
#    `mailroom run all`) starts in its own container on the host network against RabbitMQ
#    (MAILROOM_BROKER_URL, else a fresh vhost on the local broker) and MongoDB
#    (MAILROOM_MONGODB_URL, else a private in-memory stand-in from .venv); each must answer
#    /healthz and /readyz, the image's own HEALTHCHECK must pass, and every line it logged
#    must be JSON naming its service. Everything it started is removed on exit.
#
# Machines differ in what they let a container runtime do (raising rlimits needs
# CAP_SYS_RESOURCE; crun refuses hybrid cgroup v1/v2 hierarchies; overlay may be missing), so
# the runtime options are probed in order and each refusal is printed as it happens.
set -euo pipefail

cd "$(dirname "$0")/.."
TAG=localhost/mailroom:latest
BASE=
REV=
SMOKE=1
while [ $# -gt 0 ]; do
    case "$1" in
        --tag) TAG=$2; shift 2 ;;
        --base) BASE=$2; shift 2 ;;
        --git) REV=$2; shift 2 ;;
        --no-smoke) SMOKE=0; shift ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEFAULT_BASE=localhost/mailroom-base:$SUITE
WORK=.local/image
PY=.venv/bin/python
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
mkdir -p "$WORK"

say() { printf '== %s\n' "$*" >&2; }
elapsed() { echo "$(($(date +%s) - $1)) s"; }

# --- tools --------------------------------------------------------------------------------
missing=()
for pair in mmdebstrap:mmdebstrap podman:podman buildah:buildah runc:runc curl:curl; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "error: missing ${missing[*]} — apt-get install ${missing[*]} (as root)" >&2
        exit 1
    fi
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        "${missing[@]}" uidmap >/dev/null
fi

# --- storage: overlay where the kernel allows it, else vfs (slower, always works) ---------
PODMAN=(podman)
if ! out=$("${PODMAN[@]}" info 2>&1 >/dev/null); then
    say "podman refused its default storage: $out"
    PODMAN=(podman --storage-driver=vfs)
    say "retrying with ${PODMAN[*]}"
    "${PODMAN[@]}" info >/dev/null
fi

# --- base ---------------------------------------------------------------------------------
if [ -z "$BASE" ]; then
    BASE=$DEFAULT_BASE
    if "${PODMAN[@]}" image exists "$BASE"; then
        say "base $BASE exists (podman rmi $BASE to remake it)"
    else
        start=$(date +%s)
        say "mmdebstrap: Debian $SUITE from $MIRROR"
        # minbase: no apt-utils, no init; python3-venv brings pip's wheel for the venv.
        mmdebstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
            "$SUITE" "$WORK/base.tar" "$MIRROR"
        "${PODMAN[@]}" import --change 'CMD ["python3"]' "$WORK/base.tar" "$BASE" >/dev/null
        rm -f "$WORK/base.tar"
        say "base $BASE made in $(elapsed "$start")"
    fi
fi

# --- how containers may run here ----------------------------------------------------------
# Raising rlimits past the caller's needs CAP_SYS_RESOURCE, which some machines withhold:
# then give the container limits it may keep. nproc 4096 is far above what a service uses.
LIMITS=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096)
CANDIDATES=("" "${LIMITS[*]}" "--runtime runc ${LIMITS[*]}")
RUN_OPTS=
found=0
for candidate in "${CANDIDATES[@]}"; do
    # shellcheck disable=SC2086  # the candidate is a list of options
    if out=$("${PODMAN[@]}" run --rm --network host $candidate "$BASE" true 2>&1); then
        RUN_OPTS=$candidate
        found=1
        break
    fi
    say "podman run ${candidate:-(defaults)} refused: $out"
done
if [ $found = 1 ]; then
    say "containers run with: ${RUN_OPTS:-(defaults)}"
    # shellcheck disable=SC2206
    BUILD_OPTS=($RUN_OPTS)
else
    # Builds can still run without an OCI runtime; the smoke check cannot.
    say "no container runtime works here; building with --isolation chroot"
    BUILD_OPTS=(--isolation chroot)
fi

# --- build --------------------------------------------------------------------------------
start=$(date +%s)
CONTEXT=.
if [ -n "$REV" ]; then
    CONTEXT=$WORK/context
    rm -rf "$CONTEXT" && mkdir -p "$CONTEXT"
    git archive --format=tar "$REV" | tar -x -C "$CONTEXT"
    say "context: the committed tree of $REV ($(git rev-parse --short "$REV"))"
fi
secret=()
if [ -s "$CA_BUNDLE" ]; then secret=(--secret "id=ca-bundle,src=$CA_BUNDLE"); fi
say "building $TAG from deploy/Dockerfile (BASE=$BASE)"
"${PODMAN[@]}" build --format docker --network host "${BUILD_OPTS[@]}" "${secret[@]}" \
    --build-arg "BASE=$BASE" -f "$CONTEXT/deploy/Dockerfile" -t "$TAG" "$CONTEXT"
say "built $TAG in $(elapsed "$start"), $("${PODMAN[@]}" image inspect "$TAG" --format '{{.Size}}') bytes"

[ $SMOKE = 1 ] || exit 0
if [ $found = 0 ]; then
    echo "error: the smoke check needs a container runtime; every option was refused (above)" >&2
    exit 1
fi

# --- smoke check --------------------------------------------------------------------------
RUN_ID=$$
CONTAINERS=()
VHOST=
MONGO_PID=
cleanup() {
    for c in "${CONTAINERS[@]}"; do "${PODMAN[@]}" rm -f -t 5 "$c" >/dev/null 2>&1 || true; done
    if [ -n "$VHOST" ]; then rabbitmqctl delete_vhost "$VHOST" >/dev/null 2>&1 || true; fi
    if [ -n "$MONGO_PID" ]; then kill "$MONGO_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

if [ ! -x "$PY" ]; then
    echo "error: the smoke check starts its servers from $PY — run make venv first" >&2
    exit 1
fi
BROKER_URL=${MAILROOM_BROKER_URL:-}
if [ -z "$BROKER_URL" ]; then
    base_url=$("$PY" -c 'from deploy.local.servers import ensure_rabbitmq; print(ensure_rabbitmq())')
    VHOST=mailroom-image-smoke-$RUN_ID
    rabbitmqctl add_vhost "$VHOST" >/dev/null
    rabbitmqctl set_permissions -p "$VHOST" guest '.*' '.*' '.*' >/dev/null
    BROKER_URL=${base_url%/}/$VHOST
fi
MONGO_URL=${MAILROOM_MONGODB_URL:-}
if [ -z "$MONGO_URL" ]; then
    port=$(free_port)
    .venv/bin/secantusd-py --host 127.0.0.1 --port "$port" --storage-path :memory: \
        --cache-size 64M >"$WORK/mongodb.log" 2>&1 &
    MONGO_PID=$!
    MONGO_URL="mongodb://127.0.0.1:$port/?retryWrites=false"
fi

# name:command (empty command: the image's default, `mailroom run all`)
SERVICES=(
    "config:faststream run services.config.app:app"
    "fetcher:faststream run services.fetcher.app:app"
    "processor:faststream run services.processor.app:app"
    "sender:faststream run services.sender.app:app"
    "all:"
)
secret_key=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
token=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
declare -A PORTS
for entry in "${SERVICES[@]}"; do
    name=${entry%%:*}
    command=${entry#*:}
    port=$(free_port)
    PORTS[$name]=$port
    container=mailroom-smoke-$name-$RUN_ID
    # No health timer: podman schedules it through systemd, which a build machine may lack;
    # the check runs once below (podman healthcheck run).
    # shellcheck disable=SC2086  # RUN_OPTS and command are lists of words
    "${PODMAN[@]}" run -d --name "$container" --network host --health-interval disable $RUN_OPTS \
        -e MAILROOM_BROKER_URL="$BROKER_URL" -e MAILROOM_MONGODB_URL="$MONGO_URL" \
        -e MAILROOM_DATABASE="mailroom-image-smoke-$RUN_ID" \
        -e MAILROOM_SECRET_KEY="$secret_key" -e MAILROOM_API_TOKEN="$token" \
        -e MAILROOM_INSTANCE_ID="smoke-$name" -e MAILROOM_HTTP_PORT="$port" \
        "$TAG" $command >/dev/null
    CONTAINERS+=("$container")
done

# The image logs JSON lines: every line of a container's log must be one, naming its service.
JSON_LOG_CHECK='
import json, sys
lines = [line for line in sys.stdin if line.strip()]
for line in lines:
    assert json.loads(line)["service"], line
print(len(lines))'
failed=0
for entry in "${SERVICES[@]}"; do
    name=${entry%%:*}
    port=${PORTS[$name]}
    container=mailroom-smoke-$name-$RUN_ID
    start=$(date +%s)
    health= ready=
    for _ in $(seq 120); do
        health=$(curl -fsS -m 2 "http://127.0.0.1:$port/healthz" 2>/dev/null) || true
        ready=$(curl -fsS -m 2 "http://127.0.0.1:$port/readyz" 2>/dev/null) || true
        if [ -n "$health" ] && [ -n "$ready" ]; then break; fi
        if [ "$("${PODMAN[@]}" inspect "$container" --format '{{.State.Running}}')" != true ]; then
            break
        fi
        sleep 0.5
    done
    if [ -n "$health" ] && [ -n "$ready" ] && "${PODMAN[@]}" healthcheck run "$container" >/dev/null \
        && lines=$("${PODMAN[@]}" logs "$container" 2>&1 | "$PY" -c "$JSON_LOG_CHECK"); then
        say "$name: /healthz $health /readyz $ready, HEALTHCHECK passed, $lines JSON log lines ($(elapsed "$start"))"
    else
        failed=1
        say "$name: FAILED (healthz: ${health:-no answer}, readyz: ${ready:-no answer}); its log:"
        "${PODMAN[@]}" logs --tail 30 "$container" >&2 || true
    fi
done
if [ $failed = 1 ]; then
    echo "error: smoke check of $TAG failed (above)" >&2
    exit 1
fi
say "smoke check passed: $TAG runs every service"
