/* path: which request targets the relay accepts (see path.h). */
#include "path.h"

/* 1 when c may stand in a path as it is: RFC 3986 pchar minus '%'
 * (checked apart) and minus '\' (never). */
static int
plain(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9')) {
		return 1;
	}
	switch (c) {
	case '-': case '.': case '_': case '~':		/* unreserved */
	case '!': case '$': case '&': case '\'': case '(': case ')':
	case '*': case '+': case ',': case ';': case '=':	/* sub-delims */
	case ':': case '@':
		return 1;
	default:
		return 0;
	}
}

/* The byte a %XX escape stands for, or -1 when it is not one. */
static int
escaped(const char *p, size_t n, size_t i)
{
	int hi, lo;

	if (i + 2 >= n) {
		return -1;
	}
	hi = util_hex_digit(p[i + 1]);
	lo = util_hex_digit(p[i + 2]);
	return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/* One segment p[0..n): not "." or "..". */
static const char *
segment(const char *p, size_t n)
{
	if (n == 0) {
		return "empty path segment";
	}
	if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
		return "dot segment in the path";
	}
	return NULL;
}

const char *
path_check(struct view path, struct view query)
{
	const char *p = path.p, *why;
	size_t n = path.n, i, seg = 1;

	if (n == 0 || p[0] != '/') {
		return "the request target must be a path starting with /";
	}
	if (n == 1) {
		seg = 0;	/* "/" alone */
	}
	for (i = 1; i <= n; i++) {
		unsigned char c = i < n ? (unsigned char)p[i] : '/';
		int e;

		if (c == '/') {
			if (seg && (why = segment(p + seg, i - seg)) != NULL) {
				return why;
			}
			seg = i + 1;
			continue;
		}
		if (c == '\\') {
			return "backslash in the path";
		}
		if (c == '#') {
			return "fragment in the request target";
		}
		if (c == '%') {
			e = escaped(p, n, i);
			if (e < 0) {
				return "bad percent escape in the path";
			}
			if (e == '.' || e == '/' || e == '\\') {
				return "encoded dot, slash or backslash in the path";
			}
			/* A front end that decodes twice, or cuts at '#' or
			 * '?', must find nothing new either. */
			if (e == '%' || e == '#' || e == '?' || e < 0x20 ||
			    e == 0x7f) {
				return "encoded '%', '#', '?' or control "
				    "character in the path";
			}
			i += 2;
			continue;
		}
		if (!plain(c)) {
			return "character not allowed in the path";
		}
	}
	for (i = 0; i < query.n; i++) {
		unsigned char c = (unsigned char)query.p[i];

		if (c == '#') {
			return "fragment in the request target";
		}
		if (c <= 0x20 || c >= 0x7f || c == '\\') {
			return "character not allowed in the query";
		}
	}
	return NULL;
}
