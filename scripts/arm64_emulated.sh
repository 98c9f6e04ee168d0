#!/usr/bin/env bash
# The Jetson install path and the ARM CPU kernels, checked on an x86 Linux host under QEMU user emulation: a
# Debian 12 arm64 root file system with the system's Python, NumPy 1.x and OpenCV (as JetPack has them), a fake
# /etc/nv_tegra_release and no compiler. It runs `make demo` from a clone there, then every style's frames of the
# photos on x86 and arm64, and compares them. Emulation runs about 100x slower than a real CPU: it checks what the
# frames are, never their speed (about 30 minutes on 2 cores for three photos).
# usage (root, repository root, the x86 .venv of `make test`): scripts/arm64_emulated.sh PHOTO...
# needs: apt install qemu-user-static mmdebstrap, with qemu 8 or newer (7.2 crashes importing ONNX Runtime >= 1.28)
set -eu
root=${ARM64_ROOT:-/var/tmp/stylecam-arm64}
export QEMU_CPU=${QEMU_CPU:-cortex-a76}  # like Orin's A78AE: ARMv8.2, dot product, no SVE; max adds SVE2 and i8mm
python=${PYTHON:-.venv/bin/python}
binfmt=/proc/sys/fs/binfmt_misc
mountpoint -q $binfmt || mount -t binfmt_misc binfmt_misc $binfmt
[ -e $binfmt/qemu-aarch64 ] && echo -1 > $binfmt/qemu-aarch64  # register the installed qemu, not an older one
cat /usr/lib/binfmt.d/qemu-aarch64.conf > $binfmt/register
[ -d "$root/usr" ] || mmdebstrap --arch=arm64 --variant=apt \
  --include=python3,python3-venv,python3-pip,python3-opencv,python3-numpy,ca-certificates,make,git bookworm "$root"
cp /etc/resolv.conf "$root/etc/"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"  # a host behind a TLS proxy trusts its CA
echo "# R36 (release), REVISION: 4.0, emulated" > "$root/etc/nv_tegra_release"
for d in proc dev sys; do mountpoint -q "$root/$d" || mount --bind "/$d" "$root/$d"; done
rm -rf "$root/root/stylecam" "$root/tmp/photos" && mkdir -p "$root/tmp/photos" && cp "$@" "$root/tmp/photos/"
git clone -q . "$root/root/stylecam"
chroot "$root" bash -c 'cd /root/stylecam && make demo && .venv/bin/stylecam backends'
"$python" scripts/variant_frames.py save /tmp/x86_64.npz "$@"
chroot "$root" bash -c 'cd /root/stylecam && .venv/bin/python scripts/variant_frames.py save /tmp/arm64.npz /tmp/photos/*'
"$python" scripts/variant_frames.py compare /tmp/x86_64.npz "$root/tmp/arm64.npz"
