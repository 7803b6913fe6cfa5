#!/bin/sh
# Turn a file into C source:
#   sh src/embed.sh FILE [TEXT_NAME LEN_NAME]
#     a text file as a string and its length (default conf_default_text
#     and conf_default_len: the embedded default config). Backslashes and
#     quotes are escaped, and '?' too, so that no "??x" in the text is read
#     as a C trigraph.
#   sh src/embed.sh -b FILE BYTES_NAME LEN_NAME
#     any file as an array of unsigned char and its length (od -An -tx1).
set -eu
if [ "$1" = -b ]; then
	printf '/* generated from %s by src/embed.sh -b; do not edit */\n' "$2"
	printf '#include <stddef.h>\nconst unsigned char %s[] = {\n' "$3"
	od -An -v -tx1 "$2" | sed -e 's/^ *//' -e 's/ *$//' -e '/^$/d' \
	    -e 's/\([0-9a-f][0-9a-f]\)/0x\1,/g' -e 's/, */,/g'
	printf '};\nconst size_t %s = sizeof(%s);\n' "$4" "$3"
	exit 0
fi
text=${2:-conf_default_text}
len=${3:-conf_default_len}
printf '/* generated from %s by src/embed.sh; do not edit */\n' "$1"
printf '#include <stddef.h>\nconst char %s[] =\n' "$text"
sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/?/\\?/g' -e 's/^/"/' -e 's/$/\\n"/' "$1"
printf ';\nconst size_t %s = sizeof(%s) - 1;\n' "$len" "$text"
