#ifndef RELAY_FMT_H
#define RELAY_FMT_H
/* fmt: the printf family for ./relay, replacing musl's (whose vfprintf
 * carries floating-point formatting the relay never uses: ~11 KB).
 *
 * src/fmt.c defines the standard names snprintf, vsnprintf, fprintf and
 * printf (the ones the relay calls), so every object linked with
 * build/fmt.o (./relay, the unit tests) calls these and musl's vfprintf.o
 * is never linked. Callers keep including <stdio.h>; nothing needs this
 * header but tests/unit/test_fmt.c. A first use of another of the family
 * (vfprintf, vprintf, dprintf, sprintf, asprintf) would link musl's again,
 * floating point and all (~11 KB; tests/e2e/test_size.py notices): add
 * it here instead, on top of the same core.
 *
 * Supported, exactly: flags '-' and '0'; a width (digits or *, a negative
 * * meaning '-'); a precision (.digits or .*, negative = none: the most
 * bytes of a %s, the fewest digits of an integer, 0 printing no digits for
 * 0); lengths hh h l ll z j t; conversions d i u x X o c s p %. A NULL %s
 * prints "(null)"; %p prints 0x and lowercase hex (0x0 for NULL). Anything
 * else (flags ' ' '+' '#', L, floating point, %n) is copied to the output
 * as written and consumes no argument; the compiler's -Wformat checks keep
 * such formats out of the code.
 *
 * Return values are C99's: the length the whole output has (snprintf:
 * would have had), not counting the NUL; snprintf writes at most size - 1
 * bytes and a NUL when size > 0. -1 (errno EOVERFLOW) past INT_MAX bytes;
 * fprintf and printf return -1 when a write fails.
 *
 * fprintf and printf format into a FMT_CHUNK-byte stack buffer and hand it
 * to fwrite each time it fills and at the end: output of any length is
 * written whole, in pieces of FMT_CHUNK bytes, which go into the FILE's
 * own buffering (stdout buffered, stderr written at once) as before. */
#define FMT_CHUNK 1024

#include <stdarg.h>
#include <stddef.h>

/* Test hook (the relay calls the standard names, aliases of these):
 * snprintf and vsnprintf under their own names, so that the unit test
 * tests this code also where a sanitizer's runtime intercepts the
 * standard names (tests/sanitize.sh). */
int fmt_snprintf(char *restrict buf, size_t size, const char *restrict fmt,
    ...);
int fmt_vsnprintf(char *restrict buf, size_t size, const char *restrict fmt,
    va_list ap);

#endif
