#!/bin/sh
# Turn a file into C source:
#   sh src/embed.sh -b FILE BYTES_NAME LEN_NAME
#     any file as an array of unsigned char and its length (od -An -tx1).
# (The default config is packed instead: tools/lzpack.)
set -eu
if [ "$1" != -b ]; then
	echo "usage: sh src/embed.sh -b FILE BYTES_NAME LEN_NAME" >&2
	exit 2
fi
printf '/* generated from %s by src/embed.sh -b; do not edit */\n' "$2"
printf '#include <stddef.h>\nconst unsigned char %s[] = {\n' "$3"
od -An -v -tx1 "$2" | sed -e 's/^ *//' -e 's/ *$//' -e '/^$/d' \
    -e 's/\([0-9a-f][0-9a-f]\)/0x\1,/g' -e 's/, */,/g'
printf '};\nconst size_t %s = sizeof(%s);\n' "$4" "$3"
