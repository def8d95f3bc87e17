#!/usr/bin/env bash
# Builds native/html5ever-flat.wasm from Debian's packaged sources, offline:
#   html5ever and its crates from /usr/share/cargo/registry (librust-html5ever-dev),
#   Debian's rustc and cargo, the wasm32 standard library from libstd-rust-dev-wasm32.
#
#   bash native/build.sh            build, then write native/html5ever-flat.inputs
#   bash native/build.sh --install  apt-get install the packages first (as root)
#   rm native/html5ever-flat/Cargo.lock; bash native/build.sh   also pick the crate versions anew
#   OUT=/tmp/x.wasm INPUTS=/tmp/x.inputs bash native/build.sh   build and record elsewhere (native/check.sh does)
#
# The packages and versions it was made with are in native/html5ever-flat.inputs.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PACKAGES=(rustc cargo libstd-rust-dev-wasm32 librust-html5ever-dev patch)

if [ "${1:-}" = "--install" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${PACKAGES[@]}" >/dev/null
fi
for tool in /usr/bin/rustc /usr/bin/cargo /usr/share/cargo/registry/html5ever-0.26.0; do
  [ -e "$tool" ] || { echo "error: $tool is missing; run: bash native/build.sh --install" >&2; exit 1; }
done

# A fixed build directory and path remapping keep the output the same wherever the repository lives.
WORK=/tmp/tierload-native-build
rm -rf "$WORK"
mkdir -p "$WORK/cargo-home"
cp -r "$HERE/html5ever-flat" "$WORK/src"
# Three crates are patched (native/patches/): html5ever and markup5ever to follow the WHATWG spec's changes since
# their release (and html5ever not to allocate per token), tendril to push a character without formatting it and
# to move short strings without calls to memcpy.
for crate in html5ever-0.26.0 markup5ever-0.11.0 tendril-0.4.0; do
  cp -r "/usr/share/cargo/registry/$crate" "$WORK/$crate"
  patch -s -d "$WORK/$crate" -p2 <"$HERE/patches/$crate.patch"
done
cat >"$WORK/cargo-home/config.toml" <<'CONFIG'
[source.crates-io]
replace-with = "debian"
[source.debian]
directory = "/usr/share/cargo/registry"
[net]
offline = true
CONFIG

export CARGO_HOME="$WORK/cargo-home" RUSTC=/usr/bin/rustc
# The patched crates are path dependencies: cap their lints as cargo caps a registry crate's.
export RUSTFLAGS="--remap-path-prefix=$WORK=/build --remap-path-prefix=/usr/share/cargo/registry=/registry --cap-lints=warn"
export SOURCE_DATE_EPOCH=0 CARGO_INCREMENTAL=0
start=$(date +%s)
# Without a Cargo.lock (deleted to take new crate versions), one is made from what Debian has and kept.
if [ ! -f "$WORK/src/Cargo.lock" ]; then
  (cd "$WORK/src" && /usr/bin/cargo generate-lockfile --offline)
  cp "$WORK/src/Cargo.lock" "$HERE/html5ever-flat/Cargo.lock"
fi
(cd "$WORK/src" && /usr/bin/cargo build --release --locked --target wasm32-unknown-unknown)
OUT_FILE="${OUT:-$HERE/html5ever-flat.wasm}"
cp "$WORK/src/target/wasm32-unknown-unknown/release/html5ever_flat.wasm" "$OUT_FILE"
echo "built $OUT_FILE in $(($(date +%s) - start)) s, $(stat -c %s "$OUT_FILE") bytes" >&2

INPUTS_FILE="${INPUTS:-$HERE/html5ever-flat.inputs}"
{
  echo "# What native/html5ever-flat.wasm was built from (written by native/build.sh; checked by native/check.sh)."
  echo "# Debian packages, exact versions:"
  for p in "${PACKAGES[@]}"; do echo "package $p $(dpkg-query -W -f='${Version}' "$p")"; done
  echo "# The crates the build used (Cargo.lock), and the sha256 of each crate's files as Debian ships them:"
  awk '/^name = /{n=$3} /^version = /{v=$3; gsub(/"/,"",n); gsub(/"/,"",v); print n"-"v}' "$HERE/html5ever-flat/Cargo.lock" |
    while read -r crate; do
      dir=/usr/share/cargo/registry/$crate
      [ -d "$dir" ] || continue
      echo "crate $crate $(cd "$dir" && find . -type f ! -name .cargo-checksum.json -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
    done
  echo "# This repository's sources of the module:"
  (cd "$HERE" && for f in html5ever-flat/Cargo.toml html5ever-flat/Cargo.lock html5ever-flat/src/lib.rs patches/*.patch; do echo "source $f $(sha256sum "$f" | cut -d' ' -f1)"; done)
  echo "output html5ever-flat.wasm $(sha256sum "$OUT_FILE" | cut -d' ' -f1)"
} >"$INPUTS_FILE"
