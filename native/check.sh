#!/usr/bin/env bash
# Checks that native/html5ever-flat.wasm is what native/html5ever-flat.inputs says it was built from.
#
#   bash native/check.sh             the .wasm's sha256 and this repository's sources against the record
#   bash native/check.sh --rebuild   also rebuild from Debian's packages (installing them as root if missing)
#                                    and require the same crates, sources and output, byte for byte (newer
#                                    package versions that still build the same bytes are listed, not fatal)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
RECORD="$HERE/html5ever-flat.inputs"
failed=0

recorded() { awk -v kind="$1" -v name="$2" '$1 == kind && $2 == name { print $3 }' "$RECORD"; }

want=$(recorded output html5ever-flat.wasm)
have=$(sha256sum "$HERE/html5ever-flat.wasm" | cut -d' ' -f1)
if [ "$want" != "$have" ]; then
  echo "error: native/html5ever-flat.wasm has sha256 $have, but native/html5ever-flat.inputs records $want" >&2
  failed=1
fi
while read -r kind file sum; do
  [ "$kind" = source ] || continue
  actual=$(sha256sum "$HERE/$file" | cut -d' ' -f1)
  if [ "$actual" != "$sum" ]; then
    echo "error: native/$file changed since the .wasm was built (sha256 $actual, recorded $sum); run: bash native/build.sh" >&2
    failed=1
  fi
done <"$RECORD"

if [ "${1:-}" = "--rebuild" ] && [ "$failed" = 0 ]; then
  if [ ! -x /usr/bin/rustc ] || [ ! -d /usr/share/cargo/registry/html5ever-0.26.0 ]; then
    [ "$(id -u)" = 0 ] || { echo "error: Debian's rustc and html5ever are missing, and installing them needs root" >&2; exit 1; }
    install=--install
  fi
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  OUT="$tmp/html5ever-flat.wasm" INPUTS="$tmp/html5ever-flat.inputs" bash "$HERE/build.sh" ${install:-} >"$tmp/log" 2>&1 ||
    { cat "$tmp/log" >&2; echo "error: the rebuild failed" >&2; exit 1; }
  # The crates, the sources and the output must be the recorded ones. Debian's packages may move on (a
  # security update of patch, say): a rebuild with them that still gives the same bytes is said, not fatal.
  if ! diff -u <(grep -v '^package ' "$RECORD") <(grep -v '^package ' "$tmp/html5ever-flat.inputs") >&2; then
    diff -u <(grep '^package ' "$RECORD") <(grep '^package ' "$tmp/html5ever-flat.inputs") >&2 || true
    echo "error: a rebuild from the installed packages does not match native/html5ever-flat.inputs (diff above)" >&2
    failed=1
  elif ! diff -q <(grep '^package ' "$RECORD") <(grep '^package ' "$tmp/html5ever-flat.inputs") >/dev/null; then
    echo "note: Debian's packages differ from the record, and the rebuild with them gives the same bytes:" >&2
    diff <(grep '^package ' "$RECORD") <(grep '^package ' "$tmp/html5ever-flat.inputs") | grep '^[<>]' >&2 || true
  fi
fi
[ "$failed" = 0 ] && echo "native/html5ever-flat.wasm matches its recorded inputs${1:+ (rebuilt)}"
exit "$failed"
