#ifndef RELAY_TLS_INT_H
#define RELAY_TLS_INT_H
/* Inside the tls module only: the texts of tls_errors.c for the failures
 * tls.c records. Not for other modules, which get a connection's reason
 * from tls_error() (tls.h). */

/* What BearSSL error code means ("protocol error" or "malformed
 * certificate" for a code without a text of its own). */
const char *tls_br_error_text(int code);

/* What TLS alert code means, or "unknown alert". */
const char *tls_alert_text(int code);

#endif
