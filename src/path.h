#ifndef RELAY_PATH_H
#define RELAY_PATH_H
/* Request targets the relay accepts (SPEC §10). The path after /v1 goes
 * to the provider exactly as the client sent it, behind the provider's
 * base path and with the relay's credential, so it must not be able to
 * climb out of that base behind any front end that normalises paths:
 * no dot-segments, no encoded dots, slashes or backslashes, no
 * backslashes, no empty segments (nor a trailing slash), no fragment.
 * Pure. */
#include <stddef.h>

#include "util.h"

/* Check a request target's path (without its query) and its query.
 * Returns NULL when they are acceptable, else a fixed reason for a 400. */
const char *path_check(struct view path, struct view query);

#endif
