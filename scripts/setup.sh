#!/usr/bin/env bash
# Installs the system packages this project needs. Idempotent: installs only what is missing.
#   libblas-dev + libopenblas-dev/libopenblas0-pthread  CBLAS, with OpenBLAS as the provider -lblas resolves to
#   liblapacke-dev                                       LAPACKE (factorizations)
#   gnuplot-nox + fonts-dejavu-core                     renders the PNG plots of `adapterdrop demo` reports (optional at run time)
# On Debian/Ubuntu it uses apt-get (as root, or through sudo). Elsewhere it says what is missing and stops.
set -euo pipefail

packages=(libblas-dev libopenblas-dev libopenblas0-pthread liblapacke-dev gnuplot-nox fonts-dejavu-core)

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: this is not a Debian/Ubuntu system; install by hand: a CBLAS (OpenBLAS) with cblas.h, and LAPACKE." >&2
    echo "setup: then run the tests with: swift test" >&2
    exit 1
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
        sudo="sudo"
    fi
    echo "setup: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# -lblas must resolve to OpenBLAS, not the 20-40x slower reference BLAS.
blas=$(readlink -f /usr/lib/"$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)"/libblas.so.3 2>/dev/null || true)
case "$blas" in
    *openblas*) echo "setup: system packages ready (libblas -> $blas)" ;;
    *) echo "setup: warning: libblas.so.3 resolves to '$blas', not OpenBLAS; run: update-alternatives --config libblas.so.3-\$(dpkg-architecture -qDEB_HOST_MULTIARCH)" >&2 ;;
esac
