#!/usr/bin/env bash
# Builds debian:bookworm-slim from Debian's own packages where no image registry is reachable:
# mmdebstrap --variant=minbase, made as bare as the registry's slim image (no docs, man pages, info or
# locales; apt keeps no caches or lists), imported as docker.io/library/debian:bookworm-slim so the
# Dockerfile stays the standard one. The tarball is cached (BASE_CACHE) and rebuilt after BASE_MAX_DAYS.
set -euo pipefail
ENGINE=${ENGINE:-podman}
BASE_IMAGE=docker.io/library/debian:bookworm-slim
BASE_CACHE=${BASE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dreamrelay}
BASE_MAX_DAYS=${BASE_MAX_DAYS:-7}
tarball=$BASE_CACHE/debian-bookworm-minbase.tar

if [ -n "$(find "$tarball" -mtime -"$BASE_MAX_DAYS" 2>/dev/null)" ]; then
    fresh_tarball=1
else
    fresh_tarball=0
fi
if [ "$fresh_tarball" = 1 ] && $ENGINE image exists "$BASE_IMAGE" 2>/dev/null; then
    exit 0
fi
if [ "$fresh_tarball" = 0 ]; then
    echo "building the base $BASE_IMAGE from Debian's packages (mmdebstrap)"
    mkdir -p "$BASE_CACHE"
    mirror=http://deb.debian.org
    # The slim image's dpkg and apt settings (/etc/dpkg/dpkg.cfg.d/docker, /etc/apt/apt.conf.d/docker-*).
    # merged-usr hook: /usr merged as on the registry's image, without usrmerge (and the perl it pulls in)
    mmdebstrap --quiet --variant=minbase --mode="$([ "$(id -u)" = 0 ] && echo root || echo unshare)" --format=tar \
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/groff/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        --dpkgopt='path-exclude=/usr/share/lintian/*' \
        --dpkgopt='path-exclude=/usr/share/linda/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-include=/usr/share/locale/locale.alias' \
        --aptopt='APT::Install-Recommends "false"' \
        --aptopt='Acquire::Languages "none"' \
        --aptopt='Acquire::GzipIndexes "true"' \
        --aptopt='Acquire::CompressionTypes::Order:: "gz"' \
        --aptopt='Dir::Cache::pkgcache ""' \
        --aptopt='Dir::Cache::srcpkgcache ""' \
        --aptopt='DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; }' \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/apt/* "$1"/usr/share/doc/*/changelog* "$1"/usr/share/man/* "$1"/usr/share/info/* "$1"/var/cache/ldconfig/aux-cache' \
        bookworm "$tarball.part" \
        "deb $mirror/debian bookworm main" \
        "deb $mirror/debian bookworm-updates main" \
        "deb $mirror/debian-security bookworm-security main"
    mv "$tarball.part" "$tarball"
fi
$ENGINE import --quiet --change 'CMD ["bash"]' "$tarball" "$BASE_IMAGE" >/dev/null
echo "imported $BASE_IMAGE ($(du -m "$tarball" | cut -f1) MB tarball)"
