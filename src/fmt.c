/* fmt: snprintf and friends without floating point (see fmt.h). */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fmt.h"

/* Where formatted bytes go: buf[0..cap) and then, for a FILE (f), out
 * through drain() each time buf fills; for snprintf (f NULL) the bytes
 * past cap are only counted. */
struct out {
	char *buf;
	size_t cap, pos;
	size_t total;   /* every byte the format produced */
	FILE *f;
	int err;
};

/* One conversion's flags, width, precision (-1: none) and length. */
struct spec {
	size_t width;
	long prec;
	int left, zero, len;
};

enum { L_NONE, L_HH, L_H, L_L, L_LL, L_Z, L_J, L_T };

/* Empties buf into the FILE: 0 when there is none. */
static int
drain(struct out *o)
{
	size_t n = o->pos;

	if (o->f == NULL) {
		return 0;
	}
	if (n > 0 && fwrite(o->buf, 1, n, o->f) != n) {
		o->err = 1;
	}
	o->pos = 0;
	return 1;
}

/* n bytes of s, or n copies of c when s is NULL. */
static void
emit(struct out *o, const char *s, int c, size_t n)
{
	size_t room, k;

	o->total += n;
	while (n > 0) {
		room = o->cap - o->pos;
		if (room == 0) {
			if (!drain(o)) {
				return;
			}
			room = o->cap;
		}
		k = n < room ? n : room;
		if (s != NULL) {
			memcpy(o->buf + o->pos, s, k);
			s += k;
		} else {
			memset(o->buf + o->pos, c, k);
		}
		o->pos += k;
		n -= k;
	}
}

/* s[0..n) in a field of sp->width bytes, right-aligned unless '-'. */
static void
field(struct out *o, const char *s, size_t n, const struct spec *sp)
{
	size_t pad = sp->width > n ? sp->width - n : 0;

	if (!sp->left) {
		emit(o, NULL, ' ', pad);
	}
	emit(o, s, 0, n);
	if (sp->left) {
		emit(o, NULL, ' ', pad);
	}
}

/* An integer: sign or 0x prefix, at least prec digits (none asked: -1;
 * 0 with v == 0: no digit), padded to width with blanks, or with zeros
 * after the prefix for '0' without a precision. */
static void
number(struct out *o, unsigned long long v, const char *pre, int base,
    int upper, const struct spec *sp)
{
	char tmp[24], *e = tmp + sizeof tmp, *d = e;
	const char *dig = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	size_t nd, zeros, pl = strlen(pre), len;
	long prec = sp->prec;

	if (v != 0 || prec != 0) {
		if (base == 10) {
			do {
				*--d = (char)('0' + v % 10);
				v /= 10;
			} while (v != 0);
		} else {
			int shift = base == 16 ? 4 : 3;

			do {
				*--d = dig[v & (unsigned)(base - 1)];
				v >>= shift;
			} while (v != 0);
		}
	}
	nd = (size_t)(e - d);
	zeros = prec > 0 && (size_t)prec > nd ? (size_t)prec - nd : 0;
	len = pl + zeros + nd;
	if (prec < 0 && sp->zero && !sp->left && sp->width > len) {
		zeros += sp->width - len;
		len = sp->width;
	}
	if (!sp->left && sp->width > len) {
		emit(o, NULL, ' ', sp->width - len);
	}
	emit(o, pre, 0, pl);
	emit(o, NULL, '0', zeros);
	emit(o, d, 0, nd);
	if (sp->left && sp->width > len) {
		emit(o, NULL, ' ', sp->width - len);
	}
}

/* Reads digits at *pp into a count, saturating well below INT_MAX. */
static size_t
digits(const char **pp)
{
	const char *p = *pp;
	size_t n = 0;

	while (*p >= '0' && *p <= '9') {
		if (n < 100000000) {
			n = n * 10 + (size_t)(*p - '0');
		}
		p++;
	}
	*pp = p;
	return n;
}

/* Parses flags, width, precision and length after a '%'; *pp is left
 * at the conversion character. */
static void
parse(const char **pp, va_list *ap, struct spec *sp)
{
	const char *p = *pp;
	int w;

	sp->left = sp->zero = 0;
	for (;; p++) {
		if (*p == '-') {
			sp->left = 1;
		} else if (*p == '0') {
			sp->zero = 1;
		} else {
			break;
		}
	}
	if (*p == '*') {
		p++;
		w = va_arg(*ap, int);
		sp->left |= w < 0;
		sp->width = w < 0 ? 0u - (unsigned)w : (size_t)w;
	} else {
		sp->width = digits(&p);
	}
	sp->prec = -1;
	if (*p == '.') {
		p++;
		if (*p == '*') {
			p++;
			w = va_arg(*ap, int);
			sp->prec = w < 0 ? -1 : w;
		} else {
			sp->prec = (long)digits(&p);
		}
	}
	sp->len = L_NONE;
	switch (*p) {
	case 'h':
		sp->len = p[1] == 'h' ? L_HH : L_H;
		p += sp->len == L_HH ? 2 : 1;
		break;
	case 'l':
		sp->len = p[1] == 'l' ? L_LL : L_L;
		p += sp->len == L_LL ? 2 : 1;
		break;
	case 'z': sp->len = L_Z; p++; break;
	case 'j': sp->len = L_J; p++; break;
	case 't': sp->len = L_T; p++; break;
	default: break;
	}
	*pp = p;
}

/* A %d or %i argument of the length asked. */
static long long
arg_signed(int len, va_list *ap)
{
	switch (len) {
	case L_HH: return (signed char)va_arg(*ap, int);
	case L_H: return (short)va_arg(*ap, int);
	case L_L: return va_arg(*ap, long);
	case L_LL: return va_arg(*ap, long long);
	case L_Z: /* FALLTHROUGH: signed size_t is ptrdiff_t's width */
	case L_T: return va_arg(*ap, ptrdiff_t);
	case L_J: return va_arg(*ap, intmax_t);
	default: return va_arg(*ap, int);
	}
}

/* A %u %x %X %o argument of the length asked. */
static unsigned long long
arg_unsigned(int len, va_list *ap)
{
	switch (len) {
	case L_HH: return (unsigned char)va_arg(*ap, unsigned);
	case L_H: return (unsigned short)va_arg(*ap, unsigned);
	case L_L: return va_arg(*ap, unsigned long);
	case L_LL: return va_arg(*ap, unsigned long long);
	case L_Z: /* FALLTHROUGH */
	case L_T: return va_arg(*ap, size_t);
	case L_J: return va_arg(*ap, uintmax_t);
	default: return va_arg(*ap, unsigned);
	}
}

static void
core(struct out *o, const char *fmt, va_list *ap)
{
	const char *p = fmt, *start, *s;
	struct spec sp;
	long long sv;
	char c;

	for (;;) {
		start = p;
		while (*p != '\0' && *p != '%') {
			p++;
		}
		if (p > start) {
			emit(o, start, 0, (size_t)(p - start));
		}
		if (*p == '\0') {
			return;
		}
		start = p++;
		parse(&p, ap, &sp);
		switch (*p) {
		case '%':
			emit(o, "%", 0, 1);
			break;
		case 'c':
			c = (char)va_arg(*ap, int);
			field(o, &c, 1, &sp);
			break;
		case 's':
			s = va_arg(*ap, const char *);
			if (s == NULL) {
				s = "(null)";
			}
			field(o, s, sp.prec >= 0 ? strnlen(s, (size_t)sp.prec) :
			    strlen(s), &sp);
			break;
		case 'd':
		case 'i':
			sv = arg_signed(sp.len, ap);
			number(o, sv < 0 ? 0ull - (unsigned long long)sv :
			    (unsigned long long)sv, sv < 0 ? "-" : "", 10, 0, &sp);
			break;
		case 'u':
		case 'x':
		case 'X':
		case 'o':
			number(o, arg_unsigned(sp.len, ap), "",
			    *p == 'u' ? 10 : *p == 'o' ? 8 : 16, *p == 'X', &sp);
			break;
		case 'p':
			number(o, (uintptr_t)va_arg(*ap, void *), "0x", 16, 0, &sp);
			break;
		case '\0':
			/* A '%' sequence cut by the end of the format. */
			emit(o, start, 0, (size_t)(p - start));
			return;
		default:
			/* Not supported (see fmt.h): copied as written. */
			emit(o, start, 0, (size_t)(p + 1 - start));
			break;
		}
		p++;
	}
}

/* Formats into o; the return value of the printf functions. */
static int
run(struct out *o, const char *fmt, va_list ap)
{
	va_list aq;

	o->pos = o->total = 0;
	o->err = 0;
	va_copy(aq, ap);
	core(o, fmt, &aq);
	va_end(aq);
	drain(o);
	if (o->err) {
		return -1;
	}
	if (o->total > INT_MAX) {
		errno = EOVERFLOW;
		return -1;
	}
	return (int)o->total;
}

int
fmt_vsnprintf(char *restrict buf, size_t size, const char *restrict fmt,
    va_list ap)
{
	struct out o;
	int r;

	o.buf = buf;
	o.cap = size > 0 ? size - 1 : 0;
	o.f = NULL;
	r = run(&o, fmt, ap);
	if (size > 0) {
		buf[o.pos] = '\0';
	}
	return r;
}

int
fmt_snprintf(char *restrict buf, size_t size, const char *restrict fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = fmt_vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return r;
}

/* The standard names are the same functions. */
int vsnprintf(char *restrict buf, size_t size, const char *restrict fmt,
    va_list ap) __attribute__((alias("fmt_vsnprintf")));
int snprintf(char *restrict buf, size_t size, const char *restrict fmt, ...)
    __attribute__((alias("fmt_snprintf")));

/* The FILE forms, through a FMT_CHUNK buffer on the stack. */
static int
to_file(FILE *f, const char *fmt, va_list ap)
{
	char b[FMT_CHUNK];
	struct out o;

	o.buf = b;
	o.cap = sizeof b;
	o.f = f;
	return run(&o, fmt, ap);
}

int
fprintf(FILE *restrict f, const char *restrict fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = to_file(f, fmt, ap);
	va_end(ap);
	return r;
}

int
printf(const char *restrict fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = to_file(stdout, fmt, ap);
	va_end(ap);
	return r;
}
