#ifndef RELAY_LOG_H
#define RELAY_LOG_H
/* Leveled logging to stderr, one line per call, with a UTC timestamp.
 * Callers never pass secrets; log_redact() masks one if it must be named. */
#include <stddef.h>
#include "util.h"

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Messages below this level are dropped (default LOG_INFO; RELAY_LOG=debug). */
void log_set_level(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) RELAY_PRINTF(2, 3);
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Print "relay: <message>" to stderr and exit(1). Startup only. */
void fatal(const char *fmt, ...) RELAY_PRINTF(1, 2)
    __attribute__((noreturn));

/* Copy at most the first 4 chars of secret followed by "..." into out
 * (cap >= 8). */
void log_redact(const char *secret, char *out, size_t cap);

#endif
