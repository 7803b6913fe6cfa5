/* multipart: an incremental multipart/form-data reader (see multipart.h).
 *
 * The body is a sequence of states (preamble, delimiter line, header
 * block, part content, ..., epilogue). Content is scanned for the next
 * LF with memchr and the delimiter compared there, so a 50 MiB file costs
 * one pass; only at the end of a piece, when a possible delimiter runs
 * off it, does the reader hold a match: how many bytes of "\r\n--boundary"
 * the piece ended with. Those bytes are known without being kept (they
 * are a prefix of the pattern), so a mismatch hands them back as DATA
 * from m->pat itself. Header blocks are read a byte at a time through a
 * small machine that reads Content-Disposition by its grammar (RFC 7578
 * §4.2, RFC 9110 §5.6 parameters, RFC 8187 ext-values) and skips every
 * other field after checking its syntax.
 *
 * What it deliberately does not do: decode content (a
 * Content-Transfer-Encoding is the upstream's business, but not on the
 * model part), nested multipart, or keep any byte of the input. */
#include <string.h>

#include "multipart.h"

/* Where in the body. */
enum {
	S_PREAMBLE,	/* before the first delimiter */
	S_DELIM,	/* after "--boundary": "--", padding or a line end */
	S_DASH,		/* after "--boundary-": the second '-' */
	S_PAD,		/* in transport padding */
	S_DELIM_CR,	/* the delimiter line's CR was read */
	S_HEAD,		/* in a part's header block (sub: H_*) */
	S_BODY,		/* in a part's content */
	S_EPILOGUE,	/* after the closing delimiter */
	S_ERROR
};

/* Where in a header line. */
enum {
	H_START,	/* at the start of a line */
	H_NAME,		/* in a field name */
	H_VALUE,	/* in a value that is not read */
	H_CD,		/* in the Content-Disposition value (sub2: D_*) */
	H_CR,		/* a line's CR was read */
	H_END_CR	/* the CR of the empty line that ends the block */
};

/* Where in the Content-Disposition value. */
enum {
	D_LEAD,		/* OWS before the disposition type */
	D_TYPE,		/* in the type */
	D_SEMI,		/* after the type or a value: OWS, ';' or the end */
	D_PLEAD,	/* after ';': OWS, a parameter name or the end */
	D_PNAME,	/* in a parameter name */
	D_PEQ,		/* OWS before '=' */
	D_VLEAD,	/* OWS after '=' */
	D_TOKEN,	/* in a token value */
	D_QUOTED,	/* in a quoted-string */
	D_QESC,		/* after a backslash in it */
	D_CHARSET,	/* ext-value: the charset */
	D_LANG,		/* ext-value: the language */
	D_EXT,		/* ext-value: value-chars */
	D_PCT1,		/* after '%' */
	D_PCT2		/* after '%' and one hex digit */
};

/* Content-Disposition parameters read (bits of m->seen). */
enum { P_OTHER = 0, P_NAME = 1, P_NAMEX = 2, P_FILENAME = 4, P_FILENAMEX = 8 };

/* Character sets besides letters and digits: RFC 9110 §5.6.2 tchar,
 * RFC 2046 §5.1.1 bchars, RFC 8187 attr-char, RFC 2978 mime-charsetc. */
static const char TCHAR[] = "!#$%&'*+-.^_`|~";
static const char BCHAR[] = "'()+_,-./:=? ";
static const char ATTR_CHAR[] = "!#$&+-.^_`|~";
static const char CHARSET_CHAR[] = "!#$%&+-^_`{}~";

/* 1 when c is an ASCII letter, a digit or one of set. */
static int
alnum_or(unsigned char c, const char *set)
{
	if (((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
	    (c >= '0' && c <= '9')) {
		return 1;
	}
	return c != 0 && strchr(set, c) != NULL;
}

static int
is_tchar(unsigned char c)
{
	return alnum_or(c, TCHAR);
}

static int
is_ctl(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

static int
is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static unsigned char
lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static int
hex_val(unsigned char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	c = lower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* 1 when p[0..n) is lit, a lower-case literal, in any case. */
static int
ieq(const char *p, const char *lit, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (lower((unsigned char)p[i]) != (unsigned char)lit[i]) {
			return 0;
		}
	}
	return 1;
}

static int
lit_eq(const char *p, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(p, lit, n) == 0;
}

static int
valid_boundary(const char *b, size_t n)
{
	size_t i;

	if (n < 1 || n > MULTIPART_BOUNDARY_MAX || b[n - 1] == ' ') {
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (!alnum_or((unsigned char)b[i], BCHAR)) {
			return 0;
		}
	}
	return 1;
}

/* A Content-Type parameter value at v[i..n): a token or a
 * quoted-string, unescaped into out[0..*len) unless out is NULL (more
 * than MULTIPART_BOUNDARY_MAX bytes: -2). Returns the index after it,
 * or -1 when it does not parse. */
static long
ct_value(const char *v, size_t n, size_t i, char *out, size_t *len)
{
	size_t k = 0, s = i;
	int quoted = i < n && v[i] == '"';

	for (i += (size_t)quoted; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (quoted && c == '"') {
			break;
		}
		if (quoted && c == '\\' && ++i < n) {
			c = (unsigned char)v[i];
		}
		if (i == n || (quoted ? is_ctl(c) : !is_tchar(c))) {
			break;
		}
		if (out != NULL) {
			if (k == MULTIPART_BOUNDARY_MAX) {
				return -2;
			}
			out[k++] = (char)c;
		}
	}
	if (quoted ? i == n || v[i] != '"' : i == s) {
		return -1;
	}
	if (out != NULL) {
		*len = k;
	}
	return (long)(i + (size_t)quoted);
}

/* multipart_boundary() but for clearing out on failure. */
static enum multipart_err
boundary_of(const char *v, size_t n, char *out, size_t *len)
{
	static const char type[] = "multipart/form-data";
	size_t i = 0, t = sizeof(type) - 1, blen = 0;
	int found = 0;

	while (i < n && is_ows((unsigned char)v[i])) {
		i++;
	}
	if (n - i < t || !ieq(v + i, type, t) || (n - i > t &&
	    (is_tchar((unsigned char)v[i + t]) || v[i + t] == '/'))) {
		return MULTIPART_ERR_NOT_FORM;
	}
	/* *( OWS ";" OWS parameter ), RFC 9110 §5.6.6 */
	for (i += t;;) {
		size_t name;
		long r;
		int is_b;

		while (i < n && is_ows((unsigned char)v[i])) {
			i++;
		}
		if (i == n) {
			break;
		}
		if (v[i++] != ';') {
			return MULTIPART_ERR_CT_SYNTAX;
		}
		while (i < n && is_ows((unsigned char)v[i])) {
			i++;
		}
		if (i == n) {
			break;		/* a trailing ';' */
		}
		for (name = i; i < n && is_tchar((unsigned char)v[i]); i++) {
		}
		if (i == name || i == n || v[i] != '=') {
			return MULTIPART_ERR_CT_SYNTAX;
		}
		is_b = i - name == 8 && ieq(v + name, "boundary", 8);
		if (is_b && found) {
			return MULTIPART_ERR_BAD_BOUNDARY;	/* twice */
		}
		found |= is_b;
		r = ct_value(v, n, i + 1, is_b ? out : NULL, &blen);
		if (r < 0) {
			return r == -2 ? MULTIPART_ERR_BAD_BOUNDARY :
			    MULTIPART_ERR_CT_SYNTAX;
		}
		i = (size_t)r;
	}
	if (!found) {
		return MULTIPART_ERR_NO_BOUNDARY;
	}
	if (!valid_boundary(out, blen)) {
		return MULTIPART_ERR_BAD_BOUNDARY;
	}
	out[blen] = '\0';
	*len = blen;
	return MULTIPART_OK;
}

enum multipart_err
multipart_boundary(const char *v, size_t n, char *out, size_t *len)
{
	enum multipart_err e = boundary_of(v, n, out, len);

	if (e != MULTIPART_OK) {
		out[0] = '\0';
		*len = 0;
	}
	return e;
}

enum multipart_err
multipart_init(struct multipart *m, const char *boundary, size_t len,
    uint64_t within)
{
	memset(m, 0, sizeof(*m));
	if (!valid_boundary(boundary, len)) {
		m->st = S_ERROR;
		m->err = MULTIPART_ERR_BAD_BOUNDARY;
		return m->err;
	}
	memcpy(m->pat, "\r\n--", 4);
	memcpy(m->pat + 4, boundary, len);
	m->pat_len = (uint8_t)(4 + len);
	m->within = within;
	/* The body may start with the delimiter: as if after a line end. */
	m->st = S_PREAMBLE;
	m->virt = 1;
	m->k = 1;
	return MULTIPART_OK;
}

static long
fail(struct multipart *m, enum multipart_err e)
{
	m->err = e;
	m->st = S_ERROR;
	return MULTIPART_BAD;
}

/* Content bytes of the current part: to the model value when it is the
 * model part, then out as a DATA event. */
static long
content(struct multipart *m, const char *p, size_t n, uint64_t off,
    struct multipart_ev *ev)
{
	if (m->in_model) {
		if (n > (size_t)MULTIPART_MODEL_MAX - m->model_len) {
			return fail(m, MULTIPART_ERR_MODEL_LONG);
		}
		memcpy(m->model + m->model_len, p, n);
		m->model_len = (uint16_t)(m->model_len + n);
	}
	ev->type = MULTIPART_DATA;
	ev->data = p;
	ev->len = n;
	ev->off = off;
	return 0;
}

/* A whole delimiter "\r\n--boundary" (or without its CR, or at the start
 * of a part or the body) ends at the current position; the content
 * before it ended at m->hold_off. */
static long
delimiter(struct multipart *m, struct multipart_ev *ev)
{
	uint8_t st = m->st;

	m->cr = m->k = m->virt = 0;
	if (st == S_EPILOGUE) {
		return fail(m, MULTIPART_ERR_AFTER_CLOSE);
	}
	m->st = S_DELIM;
	m->head_len = 0;
	if (st == S_BODY) {
		ev->type = MULTIPART_END;
		ev->off = m->hold_off;
		if (m->in_model) {
			/* An empty value is no model; refused here, it also
			 * need never be spliced where the delimiter had no
			 * line end before it. */
			if (m->model_len == 0) {
				return fail(m, MULTIPART_ERR_MODEL_EMPTY);
			}
			m->in_model = 0;
			m->model_done = 1;
			m->model_end = m->hold_off;
			m->model[m->model_len] = '\0';
			ev->model = 1;
		}
	}
	return 0;
}

/* Scan the preamble, a part's content or the epilogue in in[0..n), n >
 * 0, at stream offset m->off, for the delimiter. Returns the bytes
 * taken, with at most one event. */
static long
scan(struct multipart *m, const char *in, size_t n, struct multipart_ev *ev)
{
	size_t full = (size_t)m->pat_len - 1;	/* "\n--boundary" */
	size_t i = 0, start;

	/* Go on with a match held from the last piece. */
	while ((m->cr || m->k) && i < n &&
	    (unsigned char)in[i] == (unsigned char)m->pat[1 + m->k]) {
		i++;
		if (++m->k == full) {
			return delimiter(m, ev) < 0 ? MULTIPART_BAD : (long)i;
		}
	}
	if (i == n) {
		return (long)n;
	}
	if (m->cr || m->k) {
		/* Not a delimiter: the held bytes were content. The byte
		 * that broke the match is read again (it may start one). */
		size_t from = m->cr ? 0 : 1 + (size_t)m->virt;
		size_t to = 1 + (size_t)m->k;

		m->cr = m->k = m->virt = 0;
		if (m->st == S_BODY && to > from) {
			return content(m, m->pat + from, to - from,
			    m->hold_off, ev) < 0 ? MULTIPART_BAD : (long)i;
		}
	}
	for (start = i;;) {
		const char *lf = memchr(in + i, '\n', n - i);
		size_t j = lf != NULL ? (size_t)(lf - in) : n;
		size_t avail = n - j < full ? n - j : full, d, took = n;

		if (lf != NULL && memcmp(in + j, m->pat + 1, avail) != 0) {
			i = j + 1;
			continue;
		}
		/* A CR before the LF (or at the end) belongs to the
		 * delimiter; one before start was content already. */
		d = j > start && in[j - 1] == '\r' ? j - 1 : j;
		if (lf == NULL || avail < full) {
			/* The piece ends inside a possible delimiter. */
			m->cr = d < j;
			m->k = (uint8_t)(lf != NULL ? avail : 0);
			m->hold_off = m->off + d;
		} else if (m->st != S_BODY || d == start) {
			m->hold_off = m->off + d;
			return delimiter(m, ev) < 0 ? MULTIPART_BAD :
			    (long)(j + full);
		} else {
			took = d;	/* the content first, then it */
		}
		if (m->st == S_BODY && d > start &&
		    content(m, in + start, d - start, m->off + start, ev) < 0) {
			return MULTIPART_BAD;
		}
		return (long)took;
	}
}

/* A delimiter line ended: a part's header block starts. */
static void
start_head(struct multipart *m, uint64_t off)
{
	m->st = S_HEAD;
	m->sub = H_START;
	m->head_off = off;
	m->cd_seen = m->cte_seen = m->seen = m->has_filename = m->in_model = 0;
	m->name_len = m->name_x_len = m->filename_len = 0;
	m->name_cut = m->name_x_cut = m->filename_cut = 0;
}

/* Keep c in buf[cap] of *len bytes so far; *len counts on past cap,
 * where *cut is set. */
static void
keep(char *buf, size_t cap, uint16_t *len, uint8_t *cut, unsigned char c)
{
	if (*len < cap) {
		buf[*len] = (char)c;
	} else {
		*cut = 1;
	}
	(*len)++;
}

/* A decoded byte of the current parameter's value. */
static void
put(struct multipart *m, unsigned char c)
{
	if (m->param == P_NAME) {
		keep(m->name, MULTIPART_NAME_MAX, &m->name_len, &m->name_cut, c);
	} else if (m->param == P_NAMEX) {
		keep(m->name_x, MULTIPART_NAME_MAX, &m->name_x_len,
		    &m->name_x_cut, c);
	} else if (m->param != P_OTHER &&
	    (m->seen & (P_FILENAME | P_FILENAMEX)) == m->param) {
		/* the first of filename= and filename*= is kept */
		keep(m->filename, MULTIPART_FILENAME_MAX, &m->filename_len,
		    &m->filename_cut, c);
	}
}

/* A byte of an ext-value, percent-decoded: ISO-8859-1 becomes UTF-8. */
static void
put_ext(struct multipart *m, unsigned char c)
{
	if (m->latin1 && c >= 0x80) {
		put(m, (unsigned char)(0xc0 | (c >> 6)));
		put(m, (unsigned char)(0x80 | (c & 0x3f)));
	} else {
		put(m, c);
	}
}

/* The disposition type ended. */
static enum multipart_err
type_end(struct multipart *m)
{
	return lit_eq(m->pname, m->pname_len, "form-data") ? MULTIPART_OK :
	    MULTIPART_ERR_NOT_FORM_DATA;
}

/* A parameter name ended: which one. */
static enum multipart_err
pname_end(struct multipart *m)
{
	const char *p = m->pname;
	size_t n = m->pname_len;
	uint8_t kind = P_OTHER;

	if (m->pname_long) {
		n = 0;		/* a long name: only its prefix matters */
	} else if (lit_eq(p, n, "name")) {
		kind = P_NAME;
	} else if (lit_eq(p, n, "name*")) {
		kind = P_NAMEX;
	} else if (lit_eq(p, n, "filename")) {
		kind = P_FILENAME;
	} else if (lit_eq(p, n, "filename*")) {
		kind = P_FILENAMEX;
	}
	if (kind == P_OTHER && ((m->pname_len > 5 &&
	    memcmp(p, "name*", 5) == 0) || (m->pname_len > 9 &&
	    memcmp(p, "filename*", 9) == 0))) {
		/* name*0=, name*0*=, ...: RFC 2231 continuations, which
		 * some readers join and others ignore */
		return MULTIPART_ERR_CONTINUATION;
	}
	if (kind != P_OTHER) {
		if (m->seen & kind) {
			return MULTIPART_ERR_PARAM_TWICE;
		}
		m->seen |= kind;
		m->has_filename |= (kind & (P_FILENAME | P_FILENAMEX)) != 0;
	}
	m->param = kind;
	return MULTIPART_OK;
}

/* An ext-value's charset ended at its quote. */
static enum multipart_err
charset_end(struct multipart *m)
{
	m->latin1 = (uint8_t)lit_eq(m->cs, m->cs_len, "iso-8859-1");
	if (!m->latin1 && !lit_eq(m->cs, m->cs_len, "utf-8")) {
		return MULTIPART_ERR_CHARSET;
	}
	m->sub2 = D_LANG;
	return MULTIPART_OK;
}

/* One byte of the Content-Disposition value (not CR, LF or a CTL):
 *   OWS type *( OWS ";" OWS name OWS "=" OWS value ) OWS
 * value: token, quoted-string, or for name*= and filename*= an
 * ext-value charset "'" [language] "'" *( attr-char / %XX ). */
static enum multipart_err
cd_byte(struct multipart *m, unsigned char c)
{
	enum multipart_err e;
	uint8_t d = m->sub2;
	int h;

	if (is_ows(c) && (d == D_LEAD || d == D_SEMI || d == D_PLEAD ||
	    d == D_PEQ || d == D_VLEAD)) {
		return MULTIPART_OK;
	}
	switch (d) {
	case D_LEAD:
	case D_PLEAD:
		if (!is_tchar(c)) {
			return MULTIPART_ERR_DISPOSITION;
		}
		m->pname_len = m->pname_long = 0;
		m->sub2 = d == D_LEAD ? D_TYPE : D_PNAME;
		return cd_byte(m, c);
	case D_TYPE:
	case D_PNAME:
		if (is_tchar(c)) {
			if (m->pname_len < sizeof(m->pname)) {
				m->pname[m->pname_len++] = (char)lower(c);
			} else {
				m->pname_long = 1;
			}
			return MULTIPART_OK;
		}
		e = d == D_TYPE ? type_end(m) : pname_end(m);
		if (e != MULTIPART_OK) {
			return e;
		}
		m->sub2 = d == D_TYPE ? D_SEMI : D_PEQ;
		return cd_byte(m, c);
	case D_SEMI:
	case D_PEQ:
		if (c != (d == D_SEMI ? ';' : '=')) {
			return MULTIPART_ERR_DISPOSITION;
		}
		m->sub2 = d == D_SEMI ? D_PLEAD : D_VLEAD;
		return MULTIPART_OK;
	case D_VLEAD:
		if (m->param & (P_NAMEX | P_FILENAMEX)) {
			/* never quoted (RFC 8187 §3.2) */
			m->cs_len = 0;
			m->sub2 = D_CHARSET;
			return cd_byte(m, c);
		}
		if (c == '"') {
			m->sub2 = D_QUOTED;
			return MULTIPART_OK;
		}
		if (!is_tchar(c)) {
			return MULTIPART_ERR_DISPOSITION;
		}
		m->sub2 = d = D_TOKEN;
		/* fall through */
	case D_TOKEN:
	case D_EXT:
		if (d == D_TOKEN ? is_tchar(c) : alnum_or(c, ATTR_CHAR)) {
			put_ext(m, c);	/* ASCII: as it is */
			return MULTIPART_OK;
		}
		if (d == D_EXT && c == '%') {
			m->sub2 = D_PCT1;
			return MULTIPART_OK;
		}
		m->sub2 = D_SEMI;
		return cd_byte(m, c);
	case D_QUOTED:
		if (c == '"') {
			m->sub2 = D_SEMI;
		} else if (c == '\\') {
			m->sub2 = D_QESC;
		} else {
			put(m, c);	/* qdtext: the CTLs are gone */
		}
		return MULTIPART_OK;
	case D_QESC:
		put(m, c);
		m->sub2 = D_QUOTED;
		return MULTIPART_OK;
	case D_CHARSET:
		if (c == '\'') {
			return charset_end(m);
		}
		if (!alnum_or(c, CHARSET_CHAR)) {
			return MULTIPART_ERR_DISPOSITION;
		}
		if (m->cs_len == sizeof(m->cs)) {
			return MULTIPART_ERR_CHARSET;
		}
		m->cs[m->cs_len++] = (char)lower(c);
		return MULTIPART_OK;
	case D_LANG:
		if (c == '\'') {
			m->sub2 = D_EXT;
			return MULTIPART_OK;
		}
		return alnum_or(c, "-") ? MULTIPART_OK :
		    MULTIPART_ERR_DISPOSITION;
	default:	/* D_PCT1, D_PCT2 */
		if ((h = hex_val(c)) < 0) {
			return MULTIPART_ERR_DISPOSITION;
		}
		if (d == D_PCT1) {
			m->pct = (uint8_t)(h << 4);
			m->sub2 = D_PCT2;
		} else {
			put_ext(m, (unsigned char)(m->pct | h));
			m->sub2 = D_EXT;
		}
		return MULTIPART_OK;
	}
}

/* The Content-Disposition line ended: may its value end here? */
static enum multipart_err
cd_end(struct multipart *m)
{
	uint8_t d = m->sub2;

	if (d == D_TYPE) {
		return type_end(m);
	}
	/* after a value, or a trailing ';' */
	return d == D_SEMI || d == D_PLEAD || d == D_TOKEN || d == D_EXT ?
	    MULTIPART_OK : MULTIPART_ERR_DISPOSITION;
}

/* The header block ended with the empty line; the content starts at
 * off. */
static enum multipart_err
head_done(struct multipart *m, uint64_t off, struct multipart_ev *ev)
{
	if (!m->cd_seen) {
		return MULTIPART_ERR_NO_DISPOSITION;
	}
	if (!(m->seen & (P_NAME | P_NAMEX))) {
		return MULTIPART_ERR_NO_NAME;
	}
	if ((m->seen & P_NAMEX) && (m->seen & P_NAME)) {
		size_t k = m->name_len < MULTIPART_NAME_MAX ? m->name_len :
		    MULTIPART_NAME_MAX;

		if (m->name_len != m->name_x_len ||
		    memcmp(m->name, m->name_x, k) != 0) {
			return MULTIPART_ERR_NAME_MISMATCH;
		}
	} else if (m->seen & P_NAMEX) {
		memcpy(m->name, m->name_x, sizeof(m->name));
		m->name_len = m->name_x_len;
		m->name_cut = m->name_x_cut;
	}
	if (lit_eq(m->name, m->name_len, "model")) {
		if (m->model_seen) {
			return MULTIPART_ERR_MODEL_TWICE;
		}
		if (m->has_filename) {
			return MULTIPART_ERR_MODEL_FILE;
		}
		if (m->cte_seen) {
			return MULTIPART_ERR_MODEL_ENCODED;
		}
		m->model_seen = 1;
		m->in_model = 1;
		m->model_off = off;
		m->model_len = 0;
	}
	m->parts++;
	m->body_off = off;
	m->st = S_BODY;
	/* The content may be empty, the delimiter right at its start. */
	m->virt = 1;
	m->k = 1;
	m->cr = 0;
	m->hold_off = off;
	ev->type = MULTIPART_PART;
	ev->off = m->head_off;
	return MULTIPART_OK;
}

/* The header field name ended at ':'. */
static enum multipart_err
hname_end(struct multipart *m)
{
	const char *p = m->hname;
	size_t n = m->hname_len;

	m->sub = H_VALUE;
	if (lit_eq(p, n, "content-disposition")) {
		if (m->cd_seen) {
			return MULTIPART_ERR_DISPOSITION_TWICE;
		}
		m->cd_seen = 1;
		m->sub = H_CD;
		m->sub2 = D_LEAD;
		m->param = P_OTHER;
	} else if (lit_eq(p, n, "content-transfer-encoding")) {
		m->cte_seen = 1;
	}
	return MULTIPART_OK;
}

/* Read the header block in in[0..n) (at stream offset m->off). Returns
 * the bytes taken, with the PART event when it ended. */
static long
head(struct multipart *m, const char *in, size_t n, struct multipart_ev *ev)
{
	enum multipart_err e = MULTIPART_OK;
	size_t i;

	for (i = 0; i < n && e == MULTIPART_OK; i++) {
		unsigned char c = (unsigned char)in[i];

		if (++m->head_len > MULTIPART_HEAD_MAX) {
			return fail(m, MULTIPART_ERR_HEAD_LONG);
		}
		switch (m->sub) {
		case H_START:
			if (c == '\r') {
				m->sub = H_END_CR;
				break;
			}
			if (c != '\n') {
				/* (white space here would be obs-fold) */
				e = is_tchar(c) ? MULTIPART_OK :
				    MULTIPART_ERR_HEAD_SYNTAX;
				m->hname[0] = (char)lower(c);
				m->hname_len = 1;
				m->sub = H_NAME;
				break;
			}
			/* the empty line: */
			/* fall through */
		case H_END_CR:
			if (c != '\n') {
				e = MULTIPART_ERR_HEAD_SYNTAX;
			} else if ((e = head_done(m, m->off + i + 1, ev)) ==
			    MULTIPART_OK) {
				return (long)(i + 1);
			}
			break;
		case H_NAME:
			if (is_tchar(c)) {
				if (m->hname_len < sizeof(m->hname)) {
					m->hname[m->hname_len++] =
					    (char)lower(c);
				}
			} else if (c == ':') {
				e = hname_end(m);
			} else {
				e = MULTIPART_ERR_HEAD_SYNTAX;
			}
			break;
		case H_VALUE:
		case H_CD:
			if (c == '\r' || c == '\n') {
				if (m->sub == H_CD) {
					e = cd_end(m);
				}
				m->sub = c == '\r' ? H_CR : H_START;
			} else if (is_ctl(c)) {
				e = MULTIPART_ERR_HEAD_SYNTAX;
			} else if (m->sub == H_CD) {
				e = cd_byte(m, c);
			}
			break;
		default:	/* H_CR */
			if (c != '\n') {
				e = MULTIPART_ERR_HEAD_SYNTAX;
			}
			m->sub = H_START;
			break;
		}
	}
	if (e != MULTIPART_OK) {
		return fail(m, e);
	}
	return (long)i;
}

/* One byte of a delimiter line after "--boundary". */
static long
delim_byte(struct multipart *m, unsigned char c, struct multipart_ev *ev)
{
	if (++m->head_len > MULTIPART_HEAD_MAX) {
		return fail(m, MULTIPART_ERR_HEAD_LONG);
	}
	switch (m->st) {
	case S_DELIM:
		if (c == '-') {
			m->st = S_DASH;
			return 1;
		}
		/* fall through */
	case S_PAD:
		if (is_ows(c)) {
			m->st = S_PAD;
		} else if (c == '\r') {
			m->st = S_DELIM_CR;
		} else if (c == '\n') {
			start_head(m, m->off + 1);
		} else {
			return fail(m, MULTIPART_ERR_DELIMITER_LINE);
		}
		return 1;
	case S_DASH:
		if (c != '-') {
			return fail(m, MULTIPART_ERR_DELIMITER_LINE);
		}
		m->st = S_EPILOGUE;
		ev->type = MULTIPART_DONE;
		ev->off = m->off + 1;
		return 1;
	default:	/* S_DELIM_CR */
		if (c != '\n') {
			return fail(m, MULTIPART_ERR_DELIMITER_LINE);
		}
		start_head(m, m->off + 1);
		return 1;
	}
}

long
multipart_feed(struct multipart *m, const char *in, size_t n,
    struct multipart_ev *ev)
{
	size_t i = 0;

	ev->type = MULTIPART_MORE;
	ev->off = m->off;
	ev->data = NULL;
	ev->len = 0;
	ev->model = 0;
	if (m->st == S_ERROR) {
		return MULTIPART_BAD;
	}
	if (m->within != 0 && !m->model_done) {
		/* The relay holds everything up to the model value. */
		if (m->off >= m->within) {
			return n == 0 ? 0 : fail(m, MULTIPART_ERR_MODEL_LATE);
		}
		if (n > m->within - m->off) {
			n = (size_t)(m->within - m->off);
		}
	}
	while (i < n && ev->type == MULTIPART_MORE) {
		long r;

		switch (m->st) {
		case S_PREAMBLE:
		case S_BODY:
		case S_EPILOGUE:
			r = scan(m, in + i, n - i, ev);
			break;
		case S_HEAD:
			r = head(m, in + i, n - i, ev);
			break;
		default:
			r = delim_byte(m, (unsigned char)in[i], ev);
			break;
		}
		if (r < 0) {
			return MULTIPART_BAD;
		}
		i += (size_t)r;
		m->off += (uint64_t)r;
	}
	return (long)i;
}

enum multipart_err
multipart_finish(struct multipart *m)
{
	if (m->st != S_ERROR && m->st != S_EPILOGUE) {
		fail(m, m->st == S_PREAMBLE ? MULTIPART_ERR_NO_DELIMITER :
		    MULTIPART_ERR_TRUNCATED);
	}
	return m->err;
}

static const char *const reasons[] = {
	[MULTIPART_OK] = "ok",
	[MULTIPART_ERR_NOT_FORM] =
	    "the content type is not multipart/form-data",
	[MULTIPART_ERR_CT_SYNTAX] = "the multipart Content-Type does not parse",
	[MULTIPART_ERR_NO_BOUNDARY] =
	    "the multipart Content-Type has no boundary",
	[MULTIPART_ERR_BAD_BOUNDARY] = "the multipart boundary is not 1-70 "
	    "characters of RFC 2046's set, or is given twice",
	[MULTIPART_ERR_NO_DELIMITER] =
	    "the multipart body holds no boundary delimiter",
	[MULTIPART_ERR_DELIMITER_LINE] = "a line of the multipart body starts "
	    "with the boundary but is not a delimiter line",
	[MULTIPART_ERR_HEAD_LONG] =
	    "a multipart part's header block is over 8 KiB",
	[MULTIPART_ERR_HEAD_SYNTAX] =
	    "a multipart part's header line does not parse",
	[MULTIPART_ERR_NO_DISPOSITION] =
	    "a multipart part has no Content-Disposition",
	[MULTIPART_ERR_DISPOSITION_TWICE] =
	    "a multipart part has two Content-Disposition fields",
	[MULTIPART_ERR_NOT_FORM_DATA] =
	    "a multipart part's Content-Disposition is not form-data",
	[MULTIPART_ERR_DISPOSITION] =
	    "a multipart part's Content-Disposition does not parse",
	[MULTIPART_ERR_PARAM_TWICE] = "a multipart part's Content-Disposition "
	    "gives a parameter twice",
	[MULTIPART_ERR_CONTINUATION] = "a multipart part's name or filename "
	    "is split into RFC 2231 continuations",
	[MULTIPART_ERR_CHARSET] =
	    "a multipart part's name*= is neither UTF-8 nor ISO-8859-1",
	[MULTIPART_ERR_NAME_MISMATCH] =
	    "a multipart part's name= and name*= differ",
	[MULTIPART_ERR_NO_NAME] = "a multipart part has no name",
	[MULTIPART_ERR_TRUNCATED] =
	    "the multipart body ended before its closing delimiter",
	[MULTIPART_ERR_AFTER_CLOSE] =
	    "the multipart body has a delimiter after its closing one",
	[MULTIPART_ERR_MODEL_TWICE] = "the multipart body has two model fields",
	[MULTIPART_ERR_MODEL_FILE] = "the model field is a file",
	[MULTIPART_ERR_MODEL_ENCODED] =
	    "the model field has a Content-Transfer-Encoding",
	[MULTIPART_ERR_MODEL_EMPTY] = "the model field is empty",
	[MULTIPART_ERR_MODEL_LONG] = "the model field is over 256 bytes",
	[MULTIPART_ERR_MODEL_LATE] = "the model field must come within the "
	    "first 256 KiB of a multipart body (put it before the files)"
};

const char *
multipart_strerror(enum multipart_err e)
{
	if ((unsigned)e < sizeof(reasons) / sizeof(reasons[0]) &&
	    reasons[e] != NULL) {
		return reasons[e];
	}
	return "the multipart body is malformed";
}

size_t
multipart_splice(const struct multipart *m, uint64_t off, const char *p,
    size_t n, const char *v, size_t vlen, struct multipart_span out[3])
{
	uint64_t a = m->model_off, b = m->model_end, end = off + n;
	size_t k = 0;

	if (off < a && n > 0) {
		out[k].p = p;
		out[k].n = (size_t)((end < a ? end : a) - off);
		k++;
	}
	if (b >= off && b < end && vlen > 0) {
		out[k].p = v;
		out[k].n = vlen;
		k++;
	}
	if (end > b) {
		uint64_t s = off > b ? off : b;

		out[k].p = p + (s - off);
		out[k].n = (size_t)(end - s);
		k++;
	}
	return k;
}
