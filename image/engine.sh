# Sourced by the image scripts: ENGINE is docker where its daemon answers, podman otherwise (installed
# with apt-get when missing, with runc and mmdebstrap, on a Debian-like machine where we are root or have
# password-less sudo). Podman reads image/containers.conf, not the machine's configuration.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -z "${ENGINE:-}" ]; then
    if command -v docker >/dev/null && docker info >/dev/null 2>&1; then ENGINE=docker; else ENGINE=podman; fi
fi
if [ "$ENGINE" = podman ]; then
    missing=()
    for tool in podman runc mmdebstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" = 0 ]; then SUDO=(); elif sudo -n true 2>/dev/null; then SUDO=(sudo -n); else
            echo "no docker daemon, and ${missing[*]} missing (not root): install them" >&2; exit 1; fi
        echo "installing ${missing[*]} with apt-get"
        "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
            || { "${SUDO[@]}" apt-get update -qq >/dev/null \
                 && "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
    fi
    export CONTAINERS_CONF="$here/containers.conf"
fi
export ENGINE
