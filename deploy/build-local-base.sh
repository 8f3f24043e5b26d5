#!/usr/bin/env bash
# Makes a base image for kurz's Dockerfile without an image registry: Debian bookworm
# from Debian's own packages (debootstrap), with python3 and its venv module, imported
# into podman as localhost/python:bookworm (docs/deploy.md, "A base image made here").
#
#   sudo deploy/build-local-base.sh [IMAGE]      # default IMAGE: localhost/python:bookworm
#   podman build --format docker --build-arg BASE_IMAGE=localhost/python:bookworm -t localhost/kurz .
#
# Needs root (debootstrap), debootstrap and podman (apt-get install debootstrap podman; on
# some machines runc and a containers.conf.d file too: docs/deploy.md).
# MIRROR=<a Debian mirror URL> picks the mirror; by default debootstrap's own.
set -euo pipefail

image="${1:-localhost/python:bookworm}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for tool in debootstrap podman; do
  command -v "$tool" >/dev/null || { echo "error: $tool is missing (apt-get install $tool)" >&2; exit 2; }
done

# minbase: dpkg, apt and the essential packages; then what the Dockerfile asks of a
# base: python3 (3.11 on bookworm), its venv module, and CA certificates for pip.
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$work/rootfs" ${MIRROR:+"$MIRROR"}
# Trust what this machine trusts: a TLS-inspecting proxy's CA in
# /usr/local/share/ca-certificates would otherwise fail every pip download in a build.
# pip reads its own bundle unless PIP_CERT names the system's (set below).
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$work/rootfs/usr/local/share/ca-certificates/"
  chroot "$work/rootfs" update-ca-certificates
fi
# Leave no package lists or downloaded .debs in the image.
chroot "$work/rootfs" apt-get clean
rm -rf "$work/rootfs/var/lib/apt/lists/"*

tar -C "$work/rootfs" --numeric-owner -c . \
  | podman import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' \
      --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' - "$image"
# The first container this machine's podman runs: where that fails, podman needs settings
# of the machine's own (limits, runtime), which docs/deploy.md says how to find.
if ! podman run --rm "$image" python3 -c 'import sys, venv; print("base image ready:", sys.version.split()[0])'; then
  echo "error: $image was made, but podman could not run it here: see docs/deploy.md, \"What this machine needed\"" >&2
  exit 1
fi
