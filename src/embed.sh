#!/bin/sh
# Turn a text file into C source defining a string and its length:
#   sh src/embed.sh FILE [TEXT_NAME LEN_NAME]
# (default conf_default_text and conf_default_len: the embedded default
# config). Backslashes and quotes are escaped, and '?' too, so that no
# "??x" in the text is read as a C trigraph.
set -eu
text=${2:-conf_default_text}
len=${3:-conf_default_len}
printf '/* generated from %s by src/embed.sh; do not edit */\n' "$1"
printf '#include <stddef.h>\nconst char %s[] =\n' "$text"
sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/?/\\?/g' -e 's/^/"/' -e 's/$/\\n"/' "$1"
printf ';\nconst size_t %s = sizeof(%s) - 1;\n' "$len" "$text"
