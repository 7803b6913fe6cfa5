#ifndef RELAY_LOG_H
#define RELAY_LOG_H
/* Leveled logging to stderr, one line per call, with a UTC timestamp.
 * Callers never pass secrets. */
#include "util.h"

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Messages below this level are dropped (default LOG_INFO; RELAY_LOG=debug). */
void log_set_level(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) RELAY_PRINTF(2, 3);
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
