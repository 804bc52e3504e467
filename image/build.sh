#!/usr/bin/env bash
# `make image`: builds the Dockerfile at the root as IMAGE (dreamrelay:latest) with docker or podman.
# With podman (no registry here) the base comes from Debian's packages (base.sh), the build uses the
# host's network, and pip reaches the package index as this machine does: a pip.conf naming this machine's
# CA bundle as /run/host-ca.crt, both given as build secrets (read-only mounts for the pip steps only;
# nothing of them is in any layer, and they do not change the layer cache).
set -euo pipefail
cd "$(dirname "$0")/.."
source image/engine.sh
IMAGE=${IMAGE:-dreamrelay:latest}
args=(--tag "$IMAGE"
      --build-arg "VERSION=$(python3 -c "import tomllib; print(tomllib.load(open('pyproject.toml', 'rb'))['project']['version'])")"
      --build-arg "REVISION=$(git rev-parse HEAD 2>/dev/null || true)"
      --build-arg "SOURCE=$(git remote get-url origin 2>/dev/null || true)")
if [ "$ENGINE" = podman ]; then
    image/base.sh
    conf_dir=$(mktemp -d)
    trap 'rm -rf "$conf_dir"' EXIT
    ca=$(python3 -m pip config get global.cert 2>/dev/null || true)
    ca=${PIP_CERT:-${ca:-${REQUESTS_CA_BUNDLE:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}}}
    index=$(python3 -m pip config get global.index-url 2>/dev/null || true)
    index=${PIP_INDEX_URL:-$index}
    {
        echo "[global]"
        echo "cert = /run/host-ca.crt"
        echo "timeout = ${PIP_DEFAULT_TIMEOUT:-60}"
        case "$index" in http*) echo "index-url = $index" ;; esac
    } > "$conf_dir/pip.conf"
    # --format docker: the OCI format has no HEALTHCHECK.
    args+=(--format docker --network host
           --secret "id=pip.conf,src=$conf_dir/pip.conf" --secret "id=host-ca,src=$ca")
fi
start=$(date +%s)
$ENGINE build "${args[@]}" .
echo "built $IMAGE with $ENGINE in $(( $(date +%s) - start )) s" \
     "($($ENGINE image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%d MB", $1 / 1e6}'))"
