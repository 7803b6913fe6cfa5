#!/bin/sh
# Turn a text file into C source defining conf_default_text and
# conf_default_len (the embedded default config).
set -eu
printf '/* generated from %s by src/embed.sh; do not edit */\n' "$1"
printf '#include <stddef.h>\nconst char conf_default_text[] =\n'
sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$/\\n"/' "$1"
printf ';\nconst size_t conf_default_len = sizeof(conf_default_text) - 1;\n'
