#!/usr/bin/env bash
# Build the connector image from ./Dockerfile, then run `spec`, `check` and `read` through the image's own
# entrypoint against the local emulator (python -m integration_tests.emulator on 127.0.0.1), and check what comes out:
# one SPEC, CONNECTION_STATUS SUCCEEDED (and FAILED for a wrong token), and as many RECORDs per stream as the
# emulator serves.
#
# With a Docker engine (`docker info` answers) it uses `docker build` and `docker run --network host` (a Linux
# engine: the container must reach the emulator on the host's 127.0.0.1).
# Without one, as root on Debian, it uses podman: the build runs with chroot isolation FROM a local stand-in for
# Airbyte's base image (Debian bookworm + Python 3.11 from debootstrap, plus the `airbyte` user the Dockerfile
# expects), built once and kept in podman's image store; the image's filesystem is then run with chroot, as the
# image's user, with the image's environment and entrypoint. The stand-in is NOT Airbyte's base image: this path
# checks our Dockerfile, packaging and entrypoint, not python-connector-base itself.
#
# Environment: IMAGE (tag to build, default airbyte/source-dixa:dev), PYTHON (runs the emulator and parses the
# output, default .venv/bin/python), DEBIAN_MIRROR (for debootstrap), ENGINE=docker|podman (skip detection).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-airbyte/source-dixa:dev}
PYTHON=${PYTHON:-.venv/bin/python}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
STANDIN=localhost/python-connector-base-standin:bookworm-py311
# The emulator's data starts 2024-01-01; some messages were created weeks before that, so start a year early.
START_DATE=2023-01-01

log() { printf '[image-check] %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

WORK=$(mktemp -d)
# The connector runs as the image's non-root user, so it must be able to read the files written here.
chmod 755 "$WORK"
EMULATOR_PID=
CONTAINER=
cleanup() {
    if [[ -n $CONTAINER ]]; then
        podman umount "$CONTAINER" > /dev/null 2>&1 || true
        podman rm "$CONTAINER" > /dev/null 2>&1 || true
    fi
    if [[ -n $EMULATOR_PID ]]; then
        kill "$EMULATOR_PID" 2> /dev/null || true
        wait "$EMULATOR_PID" 2> /dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

pick_engine() {
    if [[ -n ${ENGINE:-} ]]; then
        echo "$ENGINE"
    elif command -v docker > /dev/null 2>&1 && timeout 30 docker info > /dev/null 2>&1; then
        echo docker
    else
        echo podman
    fi
}

# ---- podman route -----------------------------------------------------------------------------------------------

ensure_podman_tools() {
    if command -v podman > /dev/null && command -v debootstrap > /dev/null; then
        return
    fi
    [[ $(id -u) -eq 0 ]] || die "no Docker engine answers, and installing podman needs root"
    command -v apt-get > /dev/null || die "no Docker engine answers, and there is no apt-get to install podman"
    log "installing podman and debootstrap with apt-get"
    apt-get update -q > /dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman debootstrap > /dev/null
}

ensure_containers_conf() {
    # Podman's defaults fail on these machines: setting rlimits is refused, and systemd cgroups are absent.
    local conf=/etc/containers/containers.conf
    if [[ -f $conf ]]; then
        return
    fi
    log "writing $conf (no default ulimits, cgroupfs)"
    mkdir -p /etc/containers
    cat > "$conf" << 'EOF'
[containers]
default_ulimits = []
[engine]
cgroup_manager = "cgroupfs"
EOF
}

ensure_standin() {
    if podman image exists "$STANDIN"; then
        log "stand-in base image $STANDIN is cached"
        return
    fi
    log "building the stand-in base image $STANDIN with debootstrap (a few minutes, once)"
    local rootfs
    rootfs=$(mktemp -d /var/tmp/standin-rootfs.XXXXXX)
    debootstrap --variant=minbase \
        --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
        bookworm "$rootfs" "$DEBIAN_MIRROR" > "$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log" >&2; rm -rf "$rootfs"; die "debootstrap failed"; }
    # What python-connector-base provides that our Dockerfile relies on: the `airbyte` user (uid 1000), an
    # /airbyte directory it owns, UTC as local time, and a pip that may install into the system Python.
    chroot "$rootfs" groupadd --gid 1000 airbyte
    chroot "$rootfs" useradd --uid 1000 --gid 1000 --no-create-home --shell /usr/sbin/nologin airbyte
    install -d -m 755 -o 1000 -g 1000 "$rootfs/airbyte"
    ln -snf /usr/share/zoneinfo/Etc/UTC "$rootfs/etc/localtime"
    rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
    tar -C "$rootfs" -c . | podman import --change 'CMD ["python3"]' - "$STANDIN" > "$WORK/import.log" 2>&1 \
        || { tail -20 "$WORK/import.log" >&2; rm -rf "$rootfs"; die "podman import failed"; }
    rm -rf "$rootfs"
}

build_podman() {
    # debootstrap, chroot and `podman mount` need root; a developer without root needs a Docker engine.
    [[ $(id -u) -eq 0 ]] || die "no Docker engine answers, and the podman route needs root"
    ensure_podman_tools
    ensure_containers_conf
    ensure_standin
    log "building $IMAGE from ./Dockerfile with podman (chroot isolation, BASE_IMAGE=$STANDIN)"
    # The host's CA bundle lets pip inside the build reach the package index the way the host does.
    local previous
    previous=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2> /dev/null || true)
    # --layers=false: keep no intermediate images (the builder stage alone is as big as the result).
    podman build --isolation=chroot --network=host --layers=false \
        -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
        --build-arg "BASE_IMAGE=$STANDIN" -t "$IMAGE" . > "$WORK/build.log" 2>&1 \
        || { tail -40 "$WORK/build.log" >&2; die "podman build failed"; }
    # The image this tag named before is now untagged; drop it unless something still uses it.
    if [[ -n $previous && $previous != $(podman image inspect --format '{{.Id}}' "$IMAGE") ]]; then
        podman rmi "$previous" > /dev/null 2>&1 || true
    fi
    CONTAINER=$(podman create "$IMAGE")
    ROOTFS=$(podman mount "$CONTAINER")
}

# Run the image's entrypoint with "$@" (paths under /data are the files in $WORK).
run_podman() {
    mkdir -p "$ROOTFS/data"
    cp "$WORK"/*.json "$ROOTFS/data/"
    chmod 755 "$ROOTFS/data"
    chmod 644 "$ROOTFS"/data/*.json
    local -a launch
    mapfile -t launch < <("$PYTHON" - "$WORK/image-config.json" "$ROOTFS" << 'EOF'
import json, sys
config, rootfs = json.load(open(sys.argv[1])), sys.argv[2]
user = config.get("User") or "root"
name, _, group = user.partition(":")
uid = gid = None
for line in open(f"{rootfs}/etc/passwd"):
    fields = line.split(":")
    if fields[0] == name or fields[2] == name:
        uid, gid = fields[2], fields[3]
if uid is None:
    sys.exit(f"user {user!r} of the image is not in its /etc/passwd")
print(f"--userspec={uid}:{group or gid}")
print(f"--groups={group or gid}")
print(rootfs)
print("/usr/bin/env")
print("-i")
print(f"--chdir={config.get('WorkingDir') or '/'}")
for item in config.get("Env") or []:
    print(item)
print("HOME=/tmp")
for item in config.get("Entrypoint") or []:
    print(item)
EOF
    )
    chroot "${launch[@]}" "$@"
}

# ---- docker route -----------------------------------------------------------------------------------------------

build_docker() {
    log "building $IMAGE from ./Dockerfile with docker"
    docker build -t "$IMAGE" . > "$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log" >&2; die "docker build failed"; }
}

run_docker() {
    docker run --rm -i --network host -v "$WORK:/data:ro" "$IMAGE" "$@"
}

# ---- the checks -------------------------------------------------------------------------------------------------

# The built image's settings: non-root user, the entrypoint named by AIRBYTE_ENTRYPOINT, labels matching setup.py.
verify_image_config() {
    "$1" image inspect --format '{{json .Config}}' "$IMAGE" > "$WORK/image-config.json"
    "$PYTHON" - "$WORK/image-config.json" << 'EOF'
import ast, json, sys
config = json.load(open(sys.argv[1]))
env = dict(item.split("=", 1) for item in config.get("Env") or [])
labels = config.get("Labels") or {}
version = next(
    ast.literal_eval(node.value)
    for node in ast.parse(open("setup.py").read()).body
    if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "VERSION"
)
problems = []
if (config.get("User") or "root").split(":")[0] in ("", "root", "0"):
    problems.append(f"runs as root (User={config.get('User')!r})")
if config.get("Entrypoint") != [env.get("AIRBYTE_ENTRYPOINT")]:
    problems.append(f"Entrypoint {config.get('Entrypoint')} is not AIRBYTE_ENTRYPOINT {env.get('AIRBYTE_ENTRYPOINT')!r}")
if labels.get("io.airbyte.version") != version or labels.get("io.airbyte.name") != "airbyte/source-dixa":
    problems.append(f"labels {labels} do not name airbyte/source-dixa {version}")
if problems:
    sys.exit("image config: " + "; ".join(problems))
print(f"image: user {config['User']}, entrypoint {config['Entrypoint']}, io.airbyte.version {version}")
EOF
}

start_emulator() {
    "$PYTHON" -m integration_tests.emulator --conversations 200 --messages-per-conversation 2 > "$WORK/emulator.out" &
    EMULATOR_PID=$!
    for _ in $(seq 100); do
        [[ -s $WORK/emulator.out ]] && break
        kill -0 "$EMULATOR_PID" 2> /dev/null || die "the emulator exited"
        sleep 0.1
    done
    [[ -s $WORK/emulator.out ]] || die "the emulator printed nothing"
    log "emulator: $(head -1 "$WORK/emulator.out")"
}

write_inputs() {
    "$PYTHON" - "$WORK" "$START_DATE" << 'EOF'
import json, pathlib, sys
work, start_date = pathlib.Path(sys.argv[1]), sys.argv[2]
emulator = json.loads((work / "emulator.out").read_text().splitlines()[0])
config = {
    "api_token": emulator["token"],
    "start_date": start_date,
    "batch_size": 31,
    "api_url": emulator["url"],
    "requests_per_minute": 6000,
}
(work / "config.json").write_text(json.dumps(config))
(work / "invalid_config.json").write_text(json.dumps({**config, "api_token": "not-the-emulator-token"}))
catalog = pathlib.Path("integration_tests/configured_catalog.json").read_text()
(work / "catalog.json").write_text(catalog)
EOF
}

# verify VERB FILE: fails with a message unless FILE holds the Airbyte messages expected for VERB.
verify() {
    "$PYTHON" - "$1" "$2" "$WORK/emulator.out" << 'EOF'
import collections, json, sys
verb, path, emulator_path = sys.argv[1:]
messages = []
for line in open(path, encoding="utf-8"):
    if line.startswith("{"):
        messages.append(json.loads(line))
by_type = collections.defaultdict(list)
for message in messages:
    by_type[message["type"]].append(message)
errors = [m["trace"]["error"]["message"] for m in by_type["TRACE"] if m["trace"].get("type") == "ERROR"]

def fail(text):
    sys.exit(f"{verb}: {text}; errors: {errors}")

if verb == "spec":
    if len(by_type["SPEC"]) != 1:
        fail(f"expected one SPEC message, got {len(by_type['SPEC'])}")
    properties = by_type["SPEC"][0]["spec"]["connectionSpecification"]["properties"]
    if "api_token" not in properties:
        fail("the spec has no api_token")
    print("spec: one SPEC message")
elif verb in ("check", "check-invalid"):
    statuses = [m["connectionStatus"]["status"] for m in by_type["CONNECTION_STATUS"]]
    wanted = "SUCCEEDED" if verb == "check" else "FAILED"
    if statuses != [wanted]:
        fail(f"expected CONNECTION_STATUS {wanted}, got {statuses}")
    print(f"{verb}: CONNECTION_STATUS {wanted}")
elif verb == "read":
    emulator = json.loads(open(emulator_path).read().splitlines()[0])
    expected = {"conversation_export": emulator["conversations"], "message_export": emulator["messages"]}
    counts = collections.Counter(m["record"]["stream"] for m in by_type["RECORD"])
    states = {m["state"]["stream"]["stream_descriptor"]["name"] for m in by_type["STATE"]}
    if errors:
        fail("the read reported errors")
    if dict(counts) != expected:
        fail(f"expected records {expected}, got {dict(counts)}")
    if states != set(expected):
        fail(f"expected STATE messages for {sorted(expected)}, got {sorted(states)}")
    print(f"read: records {dict(counts)} equal the emulator's; STATE for both streams")
EOF
}

run_and_verify() {
    local verb=$1
    shift
    local out="$WORK/$verb.out"
    local status=0
    "$RUN" "$@" > "$out" 2> "$WORK/$verb.err" || status=$?
    if [[ $verb != check-invalid && $status -ne 0 ]]; then
        tail -20 "$out" "$WORK/$verb.err" >&2
        die "$verb exited with $status"
    fi
    verify "$verb" "$out" || { tail -5 "$WORK/$verb.err" >&2; die "$verb"; }
}

main() {
    [[ -x $PYTHON ]] || die "$PYTHON not found; run 'make test' (or set PYTHON) first"
    local engine started_s
    started_s=$SECONDS
    engine=$(pick_engine)
    case $engine in
        docker) build_docker; RUN=run_docker ;;
        podman) build_podman; RUN=run_podman ;;
        *) die "unknown ENGINE '$engine'" ;;
    esac
    log "built $IMAGE with $engine in $((SECONDS - started_s)) s"
    # Also leaves $WORK/image-config.json, which run_podman reads to act as `docker run` would.
    verify_image_config "$engine" || die "the image's settings"

    start_emulator
    write_inputs
    run_and_verify spec spec
    run_and_verify check check --config /data/config.json
    run_and_verify check-invalid check --config /data/invalid_config.json
    run_and_verify read read --config /data/config.json --catalog /data/catalog.json
    log "passed with $engine in $((SECONDS - started_s)) s"
}

main "$@"
