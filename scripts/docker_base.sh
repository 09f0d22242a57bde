#!/usr/bin/env bash
# The Dockerfile's base image, python:3.11-slim-bookworm: pulled when the registry answers; otherwise a local
# stand-in with the same tag, built once and kept in the Docker engine's image store (later runs reuse it):
# a `debootstrap --variant=minbase bookworm` root with Debian's Python 3.11, pip and CA certificates (plus this
# machine's own, which outbound HTTPS through its proxy needs), `python` and `pip` on the PATH as in the
# official image, and pip allowed to install system-wide (no EXTERNALLY-MANAGED), imported with `docker import`.
# Prints what it did on stderr; exits non-zero when it can do neither.
set -euo pipefail
TAG=${BASE_IMAGE:-python:3.11-slim-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
say() { echo "docker_base: $*" >&2; }

if docker image inspect "$TAG" >/dev/null 2>&1; then
  label=$(docker image inspect -f '{{ index .Config.Labels "org.diffusion-theater.stand-in" }}' "$TAG" 2>/dev/null || true)
  say "$TAG is in the image store${label:+ (the local stand-in: $label)}"
  exit 0
fi
if timeout "${PULL_TIMEOUT:-60}" docker pull -q "$TAG" >/dev/null 2>&1; then
  say "pulled $TAG from the registry"
  exit 0
fi
say "cannot pull $TAG (the registry is unreachable): building a local stand-in with debootstrap"
command -v debootstrap >/dev/null || { say "debootstrap is missing (apt-get install debootstrap)"; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3.11,python3-pip,python3-venv,ca-certificates bookworm "$root" "$MIRROR" >&2
ln -sf /usr/bin/python3.11 "$root/usr/local/bin/python"
ln -sf /usr/bin/python3.11 "$root/usr/local/bin/python3"
ln -sf /usr/bin/pip3 "$root/usr/local/bin/pip"
rm -f "$root"/usr/lib/python3.11/EXTERNALLY-MANAGED
if [ -d /usr/local/share/ca-certificates ] && ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >&2
fi
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
  --change 'LABEL org.diffusion-theater.stand-in="debootstrap bookworm minbase + Debian python3.11"' \
  --change 'CMD ["python3"]' - "$TAG" >/dev/null
say "built the stand-in $TAG ($(docker image inspect -f '{{ .Size }}' "$TAG") bytes)"
