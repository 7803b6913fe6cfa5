#!/bin/sh
# Write the embedded trust anchors (C source) from the build machine's CA
# bundle: sh src/mkroots.sh MKROOTS OUT [BUNDLE]. RELAY_CA_BUNDLE overrides
# the default Debian path. The file is replaced only when generation
# succeeded, so a failed run never leaves a half-written roots.c behind.
# A missing bundle gives zero roots and a warning: the binary then needs
# ca_file.
set -eu
tool=$1
out=$2
bundle=${3:-${RELAY_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}}
"$tool" "$bundle" > "$out.tmp"
mv "$out.tmp" "$out"
