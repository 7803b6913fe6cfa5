/*
 * mockup: a scriptable mock upstream LLM provider for Relay's end-to-end
 * tests.  Standalone test program, not part of the relay binary.
 *
 *   build/mockup [--port N] [--port-file PATH] [--log PATH]
 *
 * One detached thread per connection, blocking sockets, HTTP/1.1 with
 * keep-alive.  Per-request behaviour is picked by a "script" taken from the
 * x-mock request header or, failing that, from the credential.  See
 * tests/e2e/README.md for the full list of steps and observation endpoints.
 *
 * All socket I/O of a connection goes through conn_read()/conn_write() so a
 * TLS mode can later be slotted in per connection.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX      (64 * 1024)          /* request head limit */
#define RBUF_SIZE     (HEAD_MAX + 8 * 1024) /* per-connection read buffer */
#define BODY_MAX      (64 * 1024 * 1024)   /* request body limit */
#define HDRS_MAX      1000                 /* request header field count */
#define KEYS_MAX      256                  /* per-credential table entries */
#define LAST_BODY_MAX (1024 * 1024)        /* body bytes kept for stats.last */
#define IDLE_SECS     300                  /* keep-alive idle / read timeout */
#define MODEL_MAX     256

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

static void die_oom(void)
{
    static const char m[] = "mockup: out of memory\n";
    ssize_t w = write(2, m, sizeof m - 1);
    (void)w;
    _exit(2);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) die_oom();
    return q;
}

static char *xstrndup(const char *s, size_t n)
{
    char *d = xrealloc(NULL, n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static char *xstrdup(const char *s) { return xstrndup(s, strlen(s)); }

typedef struct {
    char *p;
    size_t len, cap;
} sb_t;

static void sb_reserve(sb_t *s, size_t extra)
{
    if (s->len + extra + 1 <= s->cap) return;
    size_t cap = s->cap ? s->cap : 256;
    while (cap < s->len + extra + 1) {
        if (cap > SIZE_MAX / 2) die_oom();
        cap *= 2;
    }
    s->p = xrealloc(s->p, cap);
    s->cap = cap;
}

static void sb_add(sb_t *s, const char *d, size_t n)
{
    sb_reserve(s, n);
    if (n) memcpy(s->p + s->len, d, n);
    s->len += n;
    s->p[s->len] = 0;
}

static void sb_adds(sb_t *s, const char *d) { sb_add(s, d, strlen(d)); }

static void sb_addc(sb_t *s, char c) { sb_add(s, &c, 1); }

static void sb_addf(sb_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sb_addf(sb_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    sb_reserve(s, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(s->p + s->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    s->len += (size_t)n;
}

static void sb_free(sb_t *s)
{
    free(s->p);
    s->p = NULL;
    s->len = s->cap = 0;
}

static void sb_clear(sb_t *s)
{
    s->len = 0;
    if (s->p) s->p[0] = 0;
}

/* Length of a valid UTF-8 sequence starting at p (max n bytes), 0 if
 * invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) { len = 2; min = 0x80; }
    else if ((c & 0xf0) == 0xe0) { len = 3; min = 0x800; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; min = 0x10000; }
    else return 0;
    if (n < len) return 0;
    unsigned cp = c & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

/* Append d[0..n) as a quoted JSON string.  Valid UTF-8 passes through;
 * each invalid byte becomes \u00XX. */
static void sb_json_str(sb_t *s, const char *d, size_t n)
{
    const unsigned char *p = (const unsigned char *)d;
    sb_reserve(s, n + 2);
    sb_addc(s, '"');
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' &&
               p[run] != '\\')
            run++;
        if (run > i) {
            sb_add(s, d + i, run - i);
            i = run;
            continue;
        }
        unsigned c = p[i];
        switch (c) {
        case '"': sb_add(s, "\\\"", 2); i++; continue;
        case '\\': sb_add(s, "\\\\", 2); i++; continue;
        case '\n': sb_add(s, "\\n", 2); i++; continue;
        case '\r': sb_add(s, "\\r", 2); i++; continue;
        case '\t': sb_add(s, "\\t", 2); i++; continue;
        case '\b': sb_add(s, "\\b", 2); i++; continue;
        case '\f': sb_add(s, "\\f", 2); i++; continue;
        default: break;
        }
        if (c < 0x20 || c == 0x7f) {
            sb_addf(s, "\\u%04x", c);
            i++;
            continue;
        }
        size_t l = utf8_len(p + i, n - i);
        if (l == 0) {
            sb_addf(s, "\\u%04x", c);
            i++;
        } else {
            sb_add(s, d + i, l);
            i += l;
        }
    }
    sb_addc(s, '"');
}

static void sb_json_strz(sb_t *s, const char *z) { sb_json_str(s, z, strlen(z)); }

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long parse_ll(const char *s, long long dflt, long long lo,
                          long long hi)
{
    if (!s || !*s) return dflt;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s) return dflt;
    if (v < lo) v = lo;
    if (v > hi) v = hi;
    return v;
}

/* ------------------------------------------------------------------ */
/* global state                                                        */

typedef struct {
    char *key;
    long long n;
} kc_t;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static long long g_connections, g_requests;
static kc_t g_bykey[KEYS_MAX];
static int g_nbykey;
static long long g_bykey_over;
static kc_t g_steps[KEYS_MAX];
static int g_nsteps;
static long long g_steps_over;
static char *g_last; /* echo object of the last non-_mock request */
static FILE *g_log;

/* Increment key's counter; returns the count before the increment.  When
 * the table is full, unknown keys share one overflow counter.  Call with
 * g_mu held. */
static long long kc_bump(kc_t *t, int *nt, long long *over, const char *key)
{
    for (int i = 0; i < *nt; i++)
        if (strcmp(t[i].key, key) == 0) return t[i].n++;
    if (*nt < KEYS_MAX) {
        t[*nt].key = xstrdup(key);
        t[*nt].n = 1;
        (*nt)++;
        return 0;
    }
    return (*over)++;
}

static void kc_reset(kc_t *t, int *nt, long long *over)
{
    for (int i = 0; i < *nt; i++) {
        free(t[i].key);
        t[i].key = NULL;
        t[i].n = 0;
    }
    *nt = 0;
    *over = 0;
}

/* ------------------------------------------------------------------ */
/* connection I/O (the only place that touches the socket for data)    */

typedef struct {
    int fd;
    int rst;               /* close with SO_LINGER 0 */
    size_t rpos, rlen;
    char rbuf[RBUF_SIZE];
} conn_t;

static ssize_t conn_read(conn_t *c, void *buf, size_t n)
{
    for (;;) {
        ssize_t r = recv(c->fd, buf, n, 0);
        if (r < 0 && errno == EINTR) continue;
        return r;
    }
}

/* Write all of buf; 0 on success, -1 on error. */
static int conn_write(conn_t *c, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void conn_close(conn_t *c)
{
    if (c->fd < 0) return;
    if (c->rst) {
        struct linger lg = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(c->fd);
    c->fd = -1;
}

/* Half-close and swallow what the client still sends for a short while, so
 * an error response is not destroyed by an RST caused by unread data. */
static void conn_drain_close(conn_t *c)
{
    static char scratch[16384];
    shutdown(c->fd, SHUT_WR);
    long long deadline = now_ms() + 1000;
    for (;;) {
        long long rem = deadline - now_ms();
        if (rem <= 0) break;
        struct pollfd p = {c->fd, POLLIN, 0};
        int r = poll(&p, 1, (int)rem);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        /* scratch is shared between threads: its content is never used */
        if (conn_read(c, scratch, sizeof scratch) <= 0) break;
    }
    conn_close(c);
}

/* Wait ms milliseconds; return -1 early if the peer closes or resets. */
static int wait_ms(conn_t *c, long long ms)
{
    long long deadline = now_ms() + ms;
    for (;;) {
        long long rem = deadline - now_ms();
        if (rem <= 0) return 0;
        struct pollfd p = {c->fd, POLLRDHUP, 0};
        int r = poll(&p, 1, rem > 1000 ? 1000 : (int)rem);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)))
            return -1;
    }
}

/* Read more bytes into rbuf: 1 got data, 0 EOF, -1 error, -2 buffer full. */
static int conn_fill(conn_t *c)
{
    if (c->rpos > 0) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    if (c->rlen == RBUF_SIZE) return -2;
    ssize_t n = conn_read(c, c->rbuf + c->rlen, RBUF_SIZE - c->rlen);
    if (n > 0) {
        c->rlen += (size_t)n;
        return 1;
    }
    return n == 0 ? 0 : -1;
}

/* Read exactly n bytes (buffered bytes first). 0 ok, -1 error/EOF. */
static int conn_read_exact(conn_t *c, char *dst, size_t n)
{
    size_t avail = c->rlen - c->rpos;
    size_t take = avail < n ? avail : n;
    memcpy(dst, c->rbuf + c->rpos, take);
    c->rpos += take;
    dst += take;
    n -= take;
    while (n > 0) {
        ssize_t r = conn_read(c, dst, n);
        if (r <= 0) return -1;
        dst += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Read one line (LF-terminated, CR stripped) of at most max bytes. */
static int conn_read_line(conn_t *c, char *out, size_t max)
{
    for (;;) {
        char *nl = memchr(c->rbuf + c->rpos, '\n', c->rlen - c->rpos);
        if (nl) {
            size_t n = (size_t)(nl - (c->rbuf + c->rpos));
            size_t adv = n + 1;
            if (n > 0 && c->rbuf[c->rpos + n - 1] == '\r') n--;
            if (n >= max) return -1;
            memcpy(out, c->rbuf + c->rpos, n);
            out[n] = 0;
            c->rpos += adv;
            return 0;
        }
        if (c->rlen - c->rpos > max) return -1;
        if (conn_fill(c) <= 0) return -1;
    }
}

/* ------------------------------------------------------------------ */
/* requests                                                            */

typedef struct {
    char *name; /* lower-cased */
    char *value;
} hdr_t;

typedef struct {
    char *head; /* owned; fields below point into it */
    char *method, *target, *version;
    hdr_t *h;
    int nh;
    char *body;
    size_t blen;
    int keep;
} req_t;

enum { RQ_OK, RQ_EOF, RQ_IO, RQ_BAD, RQ_HEAD_BIG, RQ_BODY_BIG };

static void req_free(req_t *r)
{
    free(r->head);
    free(r->h);
    free(r->body);
    memset(r, 0, sizeof *r);
}

static const char *hget(const req_t *r, const char *name)
{
    for (int i = 0; i < r->nh; i++)
        if (strcmp(r->h[i].name, name) == 0) return r->h[i].value;
    return NULL;
}

/* Does a comma-separated header value contain token (case-insensitive)? */
static int has_token(const char *v, const char *tok)
{
    size_t tl = strlen(tok);
    while (v && *v) {
        while (*v == ' ' || *v == '\t' || *v == ',') v++;
        size_t n = strcspn(v, ",");
        size_t m = n;
        while (m > 0 && (v[m - 1] == ' ' || v[m - 1] == '\t')) m--;
        if (m == tl && strncasecmp(v, tok, tl) == 0) return 1;
        v += n;
    }
    return 0;
}

static int read_head(conn_t *c, char **out)
{
    for (;;) {
        /* tolerate empty lines before a request line */
        while (c->rpos < c->rlen &&
               (c->rbuf[c->rpos] == '\r' || c->rbuf[c->rpos] == '\n'))
            c->rpos++;
        size_t end = 0;
        for (size_t i = c->rpos; i < c->rlen; i++) {
            if (c->rbuf[i] != '\n') continue;
            if (i + 1 < c->rlen && c->rbuf[i + 1] == '\n') { end = i + 2; break; }
            if (i + 2 < c->rlen && c->rbuf[i + 1] == '\r' && c->rbuf[i + 2] == '\n') {
                end = i + 3;
                break;
            }
        }
        if (end) {
            if (end - c->rpos > HEAD_MAX) return RQ_HEAD_BIG;
            *out = xstrndup(c->rbuf + c->rpos, end - c->rpos);
            c->rpos = end;
            return RQ_OK;
        }
        if (c->rlen - c->rpos > HEAD_MAX) return RQ_HEAD_BIG;
        int f = conn_fill(c);
        if (f == 0) return c->rlen == c->rpos ? RQ_EOF : RQ_IO;
        if (f == -2) return RQ_HEAD_BIG;
        if (f < 0) return RQ_IO;
    }
}

static int parse_head(req_t *r)
{
    char *p = r->head;
    int nlines = 0;
    for (char *q = p; *q; q++)
        if (*q == '\n') nlines++;
    if (nlines > HDRS_MAX + 2) return RQ_HEAD_BIG;
    r->h = xrealloc(NULL, sizeof(hdr_t) * (size_t)(nlines + 1));
    r->nh = 0;
    int first = 1;
    while (*p) {
        char *nl = strchr(p, '\n');
        if (!nl) break;
        *nl = 0;
        if (nl > p && nl[-1] == '\r') nl[-1] = 0;
        char *line = p;
        p = nl + 1;
        if (first) {
            first = 0;
            char *sp1 = strchr(line, ' ');
            if (!sp1) return RQ_BAD;
            *sp1 = 0;
            char *tgt = sp1 + 1;
            char *sp2 = strchr(tgt, ' ');
            if (!sp2) return RQ_BAD;
            *sp2 = 0;
            r->method = line;
            r->target = tgt;
            r->version = sp2 + 1;
            if (!*r->method || !*r->target || strncmp(r->version, "HTTP/1.", 7))
                return RQ_BAD;
            continue;
        }
        if (!*line) break; /* end of head */
        if (*line == ' ' || *line == '\t') return RQ_BAD; /* obs-fold */
        char *colon = strchr(line, ':');
        if (!colon || colon == line) return RQ_BAD;
        *colon = 0;
        for (char *k = line; *k; k++) {
            if (*k == ' ' || *k == '\t') return RQ_BAD;
            *k = (char)tolower((unsigned char)*k);
        }
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t') v++;
        size_t vl = strlen(v);
        while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) v[--vl] = 0;
        r->h[r->nh].name = line;
        r->h[r->nh].value = v;
        r->nh++;
    }
    if (first) return RQ_BAD;
    const char *conn = hget(r, "connection");
    if (strcmp(r->version, "HTTP/1.0") == 0)
        r->keep = conn && has_token(conn, "keep-alive");
    else
        r->keep = !(conn && has_token(conn, "close"));
    return RQ_OK;
}

static int send_continue(conn_t *c, const req_t *r)
{
    const char *e = hget(r, "expect");
    if (e && strcasecmp(e, "100-continue") == 0 &&
        strcmp(r->version, "HTTP/1.1") == 0) {
        static const char m[] = "HTTP/1.1 100 Continue\r\n\r\n";
        return conn_write(c, m, sizeof m - 1);
    }
    return 0;
}

static int read_body(conn_t *c, req_t *r)
{
    const char *te = hget(r, "transfer-encoding");
    const char *cl = hget(r, "content-length");
    if (te && has_token(te, "chunked")) {
        if (send_continue(c, r) < 0) return RQ_IO;
        size_t cap = 0;
        char line[1024];
        for (;;) {
            if (conn_read_line(c, line, sizeof line) < 0) return RQ_IO;
            char *end;
            errno = 0;
            unsigned long long n = strtoull(line, &end, 16);
            if (end == line || errno || (*end && *end != ';' && *end != ' ' &&
                                         *end != '\t'))
                return RQ_BAD;
            if (n == 0) {
                /* trailers up to the empty line */
                for (;;) {
                    if (conn_read_line(c, line, sizeof line) < 0) return RQ_IO;
                    if (!*line) break;
                }
                break;
            }
            if (n > BODY_MAX || r->blen + n > BODY_MAX) return RQ_BODY_BIG;
            if (r->blen + n + 1 > cap) {
                cap = cap ? cap : 4096;
                while (cap < r->blen + n + 1) cap *= 2;
                r->body = xrealloc(r->body, cap);
            }
            if (conn_read_exact(c, r->body + r->blen, (size_t)n) < 0) return RQ_IO;
            r->blen += (size_t)n;
            if (conn_read_line(c, line, sizeof line) < 0) return RQ_IO;
            if (*line) return RQ_BAD;
        }
    } else if (cl) {
        const char *q = cl;
        if (!*q) return RQ_BAD;
        unsigned long long n = 0;
        for (; *q; q++) {
            if (*q < '0' || *q > '9') return RQ_BAD;
            n = n * 10 + (unsigned)(*q - '0');
            if (n > BODY_MAX) return RQ_BODY_BIG;
        }
        if (n > 0) {
            if (send_continue(c, r) < 0) return RQ_IO;
            r->body = xrealloc(NULL, (size_t)n + 1);
            if (conn_read_exact(c, r->body, (size_t)n) < 0) return RQ_IO;
            r->blen = (size_t)n;
        }
    }
    if (!r->body) r->body = xrealloc(NULL, 1);
    r->body[r->blen] = 0;
    return RQ_OK;
}

static int read_request(conn_t *c, req_t *r)
{
    memset(r, 0, sizeof *r);
    int rc = read_head(c, &r->head);
    if (rc != RQ_OK) return rc;
    rc = parse_head(r);
    if (rc != RQ_OK) return rc;
    return read_body(c, r);
}

/* ------------------------------------------------------------------ */
/* request inspection                                                  */

enum { K_CHAT, K_MSG, K_RESP, K_EMB, K_MODELS };

static int ends_with(const char *s, size_t n, const char *suf)
{
    size_t l = strlen(suf);
    return n >= l && memcmp(s + n - l, suf, l) == 0;
}

static int path_kind(const req_t *r)
{
    size_t n = strcspn(r->target, "?#");
    while (n > 1 && r->target[n - 1] == '/') n--;
    if (ends_with(r->target, n, "/embeddings")) return K_EMB;
    if (ends_with(r->target, n, "/messages")) return K_MSG;
    if (ends_with(r->target, n, "/responses")) return K_RESP;
    if (ends_with(r->target, n, "/models") && strcmp(r->method, "GET") == 0)
        return K_MODELS;
    return K_CHAT;
}

/* "key" followed by optional spaces, ':', optional spaces, "true". */
static int json_flag_true(const req_t *r, const char *qkey)
{
    size_t kl = strlen(qkey);
    const char *p = r->body, *end = r->body + r->blen;
    while (p < end && (p = memmem(p, (size_t)(end - p), qkey, kl)) != NULL) {
        const char *q = p + kl;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n')) q++;
        if (q < end && *q == ':') {
            q++;
            while (q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n')) q++;
            if (end - q >= 4 && memcmp(q, "true", 4) == 0) return 1;
        }
        p += kl;
    }
    return 0;
}

/* Find the end quote of a JSON string whose content starts at s. */
static size_t json_str_end(const char *b, size_t n, size_t s)
{
    size_t j = s;
    while (j < n && b[j] != '"') {
        if (b[j] == '\\') j++;
        j++;
    }
    return j; /* >= n when unterminated */
}

/* Top-level "model" string of the request body, raw (still JSON-escaped,
 * so it can be pasted back into JSON).  Default "mock-model". */
static void extract_model(const req_t *r, char *out, size_t outsz)
{
    const char *b = r->body;
    size_t n = r->blen, i = 0;
    int depth = 0;
    snprintf(out, outsz, "mock-model");
    while (i < n) {
        char ch = b[i];
        if (ch == '"') {
            size_t s = i + 1, j = json_str_end(b, n, s);
            if (j >= n) return;
            if (depth == 1 && j - s == 5 && memcmp(b + s, "model", 5) == 0) {
                size_t k = j + 1;
                while (k < n && isspace((unsigned char)b[k])) k++;
                if (k < n && b[k] == ':') {
                    k++;
                    while (k < n && isspace((unsigned char)b[k])) k++;
                    if (k < n && b[k] == '"') {
                        size_t vs = k + 1, ve = json_str_end(b, n, vs);
                        if (ve >= n) return;
                        size_t o = 0;
                        for (size_t t = vs; t < ve;) {
                            size_t unit = (b[t] == '\\' && t + 1 < ve) ? 2 : 1;
                            if (o + unit >= outsz) break;
                            for (size_t u = 0; u < unit; u++) {
                                unsigned char x = (unsigned char)b[t + u];
                                out[o++] = x < 0x20 ? '?' : (char)x;
                            }
                            t += unit;
                        }
                        out[o] = 0;
                        if (o > 0 && out[o - 1] == '\\') out[o - 1] = 0;
                        return;
                    }
                }
            }
            i = j + 1;
            continue;
        }
        if (ch == '{' || ch == '[') depth++;
        else if (ch == '}' || ch == ']') depth--;
        i++;
    }
}

static int is_space_or_empty(const char *s) { return !s || !*s; }

/* Credential: Authorization: Bearer <v>, x-api-key, api-key, then (extra)
 * x-goog-api-key and the ?key= query parameter.  "-" when none. */
static char *credential(const req_t *r)
{
    const char *v = hget(r, "authorization");
    if (!is_space_or_empty(v)) {
        if (strncasecmp(v, "Bearer", 6) == 0 && (v[6] == ' ' || v[6] == '\t')) {
            v += 6;
            while (*v == ' ' || *v == '\t') v++;
        }
        if (*v) return xstrdup(v);
    }
    static const char *const names[] = {"x-api-key", "api-key", "x-goog-api-key"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        v = hget(r, names[i]);
        if (!is_space_or_empty(v)) return xstrdup(v);
    }
    const char *q = strchr(r->target, '?');
    while (q) {
        q++;
        if (strncmp(q, "key=", 4) == 0) {
            size_t n = strcspn(q + 4, "&#");
            if (n) return xstrndup(q + 4, n);
        }
        q = strchr(q, '&');
    }
    return xstrdup("-");
}

/* JSON echo object of a request; body capped at cap bytes. */
static void build_echo(sb_t *s, const req_t *r, size_t cap)
{
    sb_adds(s, "{\"method\":");
    sb_json_strz(s, r->method);
    sb_adds(s, ",\"path\":");
    sb_json_strz(s, r->target);
    sb_adds(s, ",\"headers\":{");
    sb_t v = {0};
    int out = 0;
    for (int i = 0; i < r->nh; i++) {
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = strcmp(r->h[j].name, r->h[i].name) == 0;
        if (seen) continue;
        sb_clear(&v);
        sb_adds(&v, r->h[i].value);
        for (int j = i + 1; j < r->nh; j++) {
            if (strcmp(r->h[j].name, r->h[i].name)) continue;
            sb_adds(&v, ", ");
            sb_adds(&v, r->h[j].value);
        }
        if (out++) sb_addc(s, ',');
        sb_json_strz(s, r->h[i].name);
        sb_addc(s, ':');
        sb_json_str(s, v.p ? v.p : "", v.len);
    }
    sb_free(&v);
    sb_adds(s, "},\"body\":");
    size_t bl = r->blen < cap ? r->blen : cap;
    sb_json_str(s, r->body, bl);
    sb_addf(s, ",\"body_bytes\":%zu", r->blen);
    if (bl < r->blen) sb_adds(s, ",\"body_truncated\":true");
    sb_addc(s, '}');
}

/* ------------------------------------------------------------------ */
/* responses                                                           */

typedef struct {
    conn_t *c;
    req_t *r;
    const char *step;  /* step name, sent as X-Mock-Step */
    long long slowhead_ms;
    int keep;          /* announce keep-alive and keep the connection */
    char model[MODEL_MAX];
} ctx_t;

static const char *reason(int code)
{
    switch (code) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 529: return "Overloaded";
    default: return "Mock Status";
    }
}

/* clen >= 0: Content-Length; -1: chunked; -2: no framing header. */
static void head_build(sb_t *h, const ctx_t *x, int status, const char *ctype,
                       long long clen, const char *extra)
{
    sb_addf(h, "HTTP/1.1 %d %s\r\n", status, reason(status));
    sb_adds(h, "Server: mockup\r\n");
    if (ctype) sb_addf(h, "Content-Type: %s\r\n", ctype);
    if (clen >= 0) sb_addf(h, "Content-Length: %lld\r\n", clen);
    else if (clen == -1) sb_adds(h, "Transfer-Encoding: chunked\r\n");
    sb_adds(h, x->keep ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
    if (x->step) sb_addf(h, "X-Mock-Step: %s\r\n", x->step);
    if (extra) sb_adds(h, extra);
    sb_adds(h, "\r\n");
}

/* Send a built head, honouring slowhead: status line, pause, the rest. */
static int head_send(ctx_t *x, sb_t *h)
{
    if (x->slowhead_ms <= 0) return conn_write(x->c, h->p, h->len);
    char *eol = strstr(h->p, "\r\n");
    size_t first = (size_t)(eol - h->p) + 2;
    if (conn_write(x->c, h->p, first) < 0) return -1;
    if (wait_ms(x->c, x->slowhead_ms) < 0) return -1;
    return conn_write(x->c, h->p + first, h->len - first);
}

/* Full response with Content-Length; returns keep flag (0 on I/O error). */
static int respond(ctx_t *x, int status, const char *ctype, const char *body,
                   size_t blen, const char *extra)
{
    sb_t h = {0};
    int nobody = status == 204 || status == 304;
    head_build(&h, x, status, nobody ? NULL : ctype, nobody ? -2 : (long long)blen,
               extra);
    int rc;
    if (nobody) {
        rc = head_send(x, &h);
    } else if (x->slowhead_ms <= 0 && blen <= 256 * 1024) {
        sb_add(&h, body, blen);
        rc = conn_write(x->c, h.p, h.len);
    } else {
        rc = head_send(x, &h);
        if (rc == 0) rc = conn_write(x->c, body, blen);
    }
    sb_free(&h);
    return rc < 0 ? 0 : x->keep;
}

static int write_chunk(conn_t *c, const char *d, size_t n)
{
    sb_t s = {0};
    sb_reserve(&s, n + 24);
    sb_addf(&s, "%zx\r\n", n);
    sb_add(&s, d, n);
    sb_add(&s, "\r\n", 2);
    int rc = conn_write(c, s.p, s.len);
    sb_free(&s);
    return rc;
}

static void body_for_kind(sb_t *b, int kind, const char *model)
{
    switch (kind) {
    case K_EMB:
        sb_addf(b, "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\","
                   "\"index\":0,\"embedding\":[0.1,0.2]}],\"model\":\"%s\","
                   "\"usage\":{\"prompt_tokens\":8,\"total_tokens\":8}}", model);
        break;
    case K_MSG:
        sb_addf(b, "{\"id\":\"msg_mock\",\"type\":\"message\",\"role\":\"assistant\","
                   "\"model\":\"%s\",\"content\":[{\"type\":\"text\",\"text\":"
                   "\"hello from mock\"}],\"stop_reason\":\"end_turn\","
                   "\"stop_sequence\":null,"
                   "\"usage\":{\"input_tokens\":25,\"output_tokens\":15}}", model);
        break;
    case K_RESP:
        sb_addf(b, "{\"id\":\"resp_mock\",\"object\":\"response\","
                   "\"created_at\":1700000000,\"status\":\"completed\","
                   "\"model\":\"%s\",\"output\":[{\"type\":\"message\","
                   "\"id\":\"msg_mock\",\"status\":\"completed\",\"role\":\"assistant\","
                   "\"content\":[{\"type\":\"output_text\",\"text\":\"hello from mock\","
                   "\"annotations\":[]}]}],\"usage\":{\"input_tokens\":10,"
                   "\"output_tokens\":20,\"total_tokens\":30}}", model);
        break;
    case K_MODELS:
        sb_addf(b, "{\"object\":\"list\",\"data\":[{\"id\":\"mock-model\","
                   "\"object\":\"model\",\"created\":1700000000,"
                   "\"owned_by\":\"mock\"}]}");
        break;
    default:
        sb_addf(b, "{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion\","
                   "\"created\":1700000000,\"model\":\"%s\",\"choices\":[{\"index\":0,"
                   "\"message\":{\"role\":\"assistant\",\"content\":\"hello from mock\"},"
                   "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":12,"
                   "\"completion_tokens\":34,\"total_tokens\":46}}", model);
        break;
    }
}

/* Event i of a stream with n content events; 0 when past the end. */
static int gen_event(sb_t *e, int kind, long long i, long long n, int usage,
                     const char *m)
{
    if (kind == K_MSG) {
        if (i == 0) {
            sb_addf(e, "event: message_start\ndata: {\"type\":\"message_start\","
                       "\"message\":{\"id\":\"msg_mock\",\"type\":\"message\","
                       "\"role\":\"assistant\",\"model\":\"%s\",\"content\":[],"
                       "\"stop_reason\":null,\"stop_sequence\":null,\"usage\":"
                       "{\"input_tokens\":25,\"output_tokens\":1}}}\n\n", m);
        } else if (i == 1) {
            sb_adds(e, "event: content_block_start\ndata: {\"type\":"
                       "\"content_block_start\",\"index\":0,\"content_block\":"
                       "{\"type\":\"text\",\"text\":\"\"}}\n\n");
        } else if (i < n + 2) {
            sb_addf(e, "event: content_block_delta\ndata: {\"type\":"
                       "\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                       "\"text_delta\",\"text\":\"tok%lld \"}}\n\n", i - 2);
        } else if (i == n + 2) {
            sb_adds(e, "event: content_block_stop\ndata: {\"type\":"
                       "\"content_block_stop\",\"index\":0}\n\n");
        } else if (i == n + 3) {
            sb_adds(e, "event: message_delta\ndata: {\"type\":\"message_delta\","
                       "\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":"
                       "null},\"usage\":{\"output_tokens\":15}}\n\n");
        } else if (i == n + 4) {
            sb_adds(e, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        } else {
            return 0;
        }
        return 1;
    }
    if (kind == K_RESP) {
        if (i == 0) {
            sb_addf(e, "event: response.created\ndata: {\"type\":\"response.created\","
                       "\"response\":{\"id\":\"resp_mock\",\"object\":\"response\","
                       "\"created_at\":1700000000,\"status\":\"in_progress\","
                       "\"model\":\"%s\",\"output\":[]}}\n\n", m);
        } else if (i <= n) {
            sb_addf(e, "event: response.output_text.delta\ndata: {\"type\":"
                       "\"response.output_text.delta\",\"item_id\":\"msg_mock\","
                       "\"output_index\":0,\"content_index\":0,"
                       "\"delta\":\"tok%lld \"}\n\n", i - 1);
        } else if (i == n + 1) {
            sb_addf(e, "event: response.completed\ndata: {\"type\":"
                       "\"response.completed\",\"response\":{\"id\":\"resp_mock\","
                       "\"object\":\"response\",\"created_at\":1700000000,"
                       "\"status\":\"completed\",\"model\":\"%s\",\"output\":[],"
                       "\"usage\":{\"input_tokens\":10,\"output_tokens\":20,"
                       "\"total_tokens\":30}}}\n\n", m);
        } else {
            return 0;
        }
        return 1;
    }
    /* OpenAI chat completions */
    if (i < n) {
        sb_addf(e, "data: {\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\","
                   "\"created\":1700000000,\"model\":\"%s\",\"choices\":[{\"index\":0,"
                   "\"delta\":{\"content\":\"tok%lld \"},\"finish_reason\":null}]}\n\n",
               m, i);
        return 1;
    }
    i -= n;
    if (usage) {
        if (i == 0) {
            sb_addf(e, "data: {\"id\":\"chatcmpl-mock\",\"object\":"
                       "\"chat.completion.chunk\",\"created\":1700000000,"
                       "\"model\":\"%s\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,"
                       "\"completion_tokens\":34,\"total_tokens\":46}}\n\n", m);
            return 1;
        }
        i--;
    }
    if (i == 0) {
        sb_adds(e, "data: [DONE]\n\n");
        return 1;
    }
    return 0;
}

/* SSE stream: n content events ms apart.  cut >= 0: send only cut events,
 * then close without the terminating chunk. */
static int do_sse(ctx_t *x, long long n, long long ms, long long cut)
{
    int kind = path_kind(x->r);
    if (kind == K_EMB || kind == K_MODELS) kind = K_CHAT;
    int usage = json_flag_true(x->r, "\"include_usage\"");
    sb_t h = {0};
    head_build(&h, x, 200, "text/event-stream", -1, "Cache-Control: no-cache\r\n");
    int rc = head_send(x, &h);
    sb_free(&h);
    if (rc < 0) return 0;
    sb_t e = {0};
    long long sent = 0;
    for (long long i = 0;; i++) {
        sb_clear(&e);
        if (!gen_event(&e, kind, i, n, usage, x->model)) break;
        if (cut >= 0 && sent >= cut) break;
        if (i > 0 && ms > 0 && wait_ms(x->c, ms) < 0) { sb_free(&e); return 0; }
        if (write_chunk(x->c, e.p, e.len) < 0) { sb_free(&e); return 0; }
        sent++;
    }
    sb_free(&e);
    if (cut >= 0) return 0;
    if (conn_write(x->c, "0\r\n\r\n", 5) < 0) return 0;
    return x->keep;
}

static int do_ok(ctx_t *x)
{
    int kind = path_kind(x->r);
    if (kind != K_MODELS && json_flag_true(x->r, "\"stream\""))
        return do_sse(x, 5, 0, -1);
    sb_t b = {0};
    body_for_kind(&b, kind, x->model);
    int k = respond(x, 200, "application/json", b.p, b.len, NULL);
    sb_free(&b);
    return k;
}

static int do_status(ctx_t *x, int code)
{
    sb_t b = {0};
    sb_addf(&b, "{\"error\":{\"message\":\"mock error %d\",\"type\":\"mock\","
                "\"code\":\"mock%d\"}}", code, code);
    const char *extra = (code == 429 || code == 503) ? "Retry-After: 1\r\n" : NULL;
    int k = respond(x, code, "application/json", b.p, b.len, extra);
    sb_free(&b);
    return k;
}

static const char BIG_PRE[] = "{\"id\":\"big\",\"object\":\"chat.completion\",\"pad\":\"";
static const char BIG_SUF[] =
    "\",\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}";
#define BIG_PRE_LEN (sizeof BIG_PRE - 1)
#define BIG_SUF_LEN (sizeof BIG_SUF - 1)

/* Bytes [off, off+n) of the big body of total bytes. */
static void big_fill(char *dst, unsigned long long off, size_t n,
                     unsigned long long total)
{
    memset(dst, 'x', n);
    unsigned long long end = off + n;
    if (off < BIG_PRE_LEN) {
        unsigned long long e = end < BIG_PRE_LEN ? end : BIG_PRE_LEN;
        memcpy(dst, BIG_PRE + off, (size_t)(e - off));
    }
    unsigned long long ss = total - BIG_SUF_LEN;
    if (end > ss) {
        unsigned long long s = off > ss ? off : ss;
        memcpy(dst + (s - off), BIG_SUF + (s - ss), (size_t)(end - s));
    }
}

static int do_big(ctx_t *x, unsigned long long total, int chunked)
{
    if (total < BIG_PRE_LEN + BIG_SUF_LEN) total = BIG_PRE_LEN + BIG_SUF_LEN;
    sb_t h = {0};
    head_build(&h, x, 200, "application/json", chunked ? -1 : (long long)total, NULL);
    int rc = head_send(x, &h);
    sb_free(&h);
    if (rc < 0) return 0;
    size_t step = chunked ? 16 * 1024 : 64 * 1024;
    char *buf = xrealloc(NULL, step + 32);
    unsigned long long off = 0;
    while (off < total && rc == 0) {
        size_t n = total - off < step ? (size_t)(total - off) : step;
        if (chunked) {
            int hl = snprintf(buf, 32, "%zx\r\n", n);
            big_fill(buf + hl, off, n, total);
            memcpy(buf + hl + n, "\r\n", 2);
            rc = conn_write(x->c, buf, (size_t)hl + n + 2);
        } else {
            big_fill(buf, off, n, total);
            rc = conn_write(x->c, buf, n);
        }
        off += n;
    }
    free(buf);
    if (rc == 0 && chunked) rc = conn_write(x->c, "0\r\n\r\n", 5);
    return rc < 0 ? 0 : x->keep;
}

static int do_trunc(ctx_t *x, long long n)
{
    sb_t h = {0};
    head_build(&h, x, 200, "application/json", 1000, NULL);
    char body[1000];
    big_fill(body, 0, sizeof body, sizeof body);
    if (n > 999) n = 999;
    int rc = head_send(x, &h);
    if (rc == 0 && n > 0) conn_write(x->c, body, (size_t)n);
    sb_free(&h);
    return 0;
}

static int do_hugehead(ctx_t *x)
{
    sb_t extra = {0};
    char pad[1001];
    memset(pad, 'p', 1000);
    pad[1000] = 0;
    for (int i = 0; extra.len < 200 * 1024; i++)
        sb_addf(&extra, "X-Mock-Pad-%03d: %s\r\n", i, pad);
    sb_t b = {0};
    body_for_kind(&b, path_kind(x->r) == K_MODELS ? K_MODELS : K_CHAT, x->model);
    int k = respond(x, 200, "application/json", b.p, b.len, extra.p);
    sb_free(&b);
    sb_free(&extra);
    return k;
}

static int do_echo(ctx_t *x)
{
    sb_t b = {0};
    build_echo(&b, x->r, SIZE_MAX);
    int k = respond(x, 200, "application/json", b.p, b.len, NULL);
    sb_free(&b);
    return k;
}

static int all_digits(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

/* Pick step number idx (last repeats) out of a ','-separated script. */
static char *pick_step(const char *script, long long idx)
{
    const char *p = script;
    long long i = 0;
    for (;;) {
        size_t n = strcspn(p, ",");
        if (i == idx || p[n] == 0) {
            while (n > 0 && isspace((unsigned char)*p)) { p++; n--; }
            while (n > 0 && isspace((unsigned char)p[n - 1])) n--;
            return xstrndup(p, n);
        }
        p += n + 1;
        i++;
    }
}

static int run_step(ctx_t *x, char *step)
{
    char *name = step, *a1 = NULL, *a2 = NULL;
    char *colon = strchr(step, ':');
    if (colon) {
        *colon = 0;
        a1 = colon + 1;
        colon = strchr(a1, ':');
        if (colon) {
            *colon = 0;
            a2 = colon + 1;
        }
    }
    x->step = name;
    if (strcmp(name, "ok") == 0) return do_ok(x);
    if (strcmp(name, "sse") == 0)
        return do_sse(x, parse_ll(a1, 5, 0, 1000000), parse_ll(a2, 0, 0, 86400000), -1);
    if (strcmp(name, "sse_cut") == 0)
        return do_sse(x, 1000000, parse_ll(a2, 0, 0, 86400000), parse_ll(a1, 3, 0, 1000000));
    if (strcmp(name, "status") == 0 || (strlen(name) == 3 && all_digits(name))) {
        const char *cs = name[0] == 's' ? a1 : name;
        return do_status(x, (int)parse_ll(cs, 500, 200, 599));
    }
    if (strcmp(name, "reset") == 0) {
        x->c->rst = 1;
        return 0;
    }
    if (strcmp(name, "close") == 0) return 0;
    if (strcmp(name, "stall") == 0) {
        if (wait_ms(x->c, parse_ll(a1, 600000, 0, 86400000LL * 365)) < 0) return 0;
        return do_ok(x);
    }
    if (strcmp(name, "slowhead") == 0) {
        x->slowhead_ms = parse_ll(a1, 1000, 0, 86400000);
        return do_ok(x);
    }
    if (strcmp(name, "trunc") == 0) return do_trunc(x, parse_ll(a1, 100, 0, 999));
    if (strcmp(name, "big") == 0)
        return do_big(x, (unsigned long long)parse_ll(a1, 1048576, 0, LLONG_MAX), 0);
    if (strcmp(name, "bigchunked") == 0)
        return do_big(x, (unsigned long long)parse_ll(a1, 1048576, 0, LLONG_MAX), 1);
    if (strcmp(name, "badhead") == 0) {
        static const char m[] = "HTTP/1.1 2x0 OK\r\n\r\n";
        conn_write(x->c, m, sizeof m - 1);
        return 0;
    }
    if (strcmp(name, "hugehead") == 0) return do_hugehead(x);
    if (strcmp(name, "echo") == 0) return do_echo(x);
    x->step = "ok";
    return do_ok(x);
}

/* ------------------------------------------------------------------ */
/* observation endpoints                                               */

static int handle_mock(ctx_t *x)
{
    req_t *r = x->r;
    size_t n = strcspn(r->target, "?#");
    if (n == strlen("/_mock/stats") && !strncmp(r->target, "/_mock/stats", n) &&
        strcmp(r->method, "GET") == 0) {
        sb_t b = {0};
        pthread_mutex_lock(&g_mu);
        sb_addf(&b, "{\"connections\":%lld,\"requests\":%lld,\"by_key\":{",
                g_connections, g_requests);
        for (int i = 0; i < g_nbykey; i++) {
            if (i) sb_addc(&b, ',');
            sb_json_strz(&b, g_bykey[i].key);
            sb_addf(&b, ":%lld", g_bykey[i].n);
        }
        if (g_bykey_over)
            sb_addf(&b, "%s\"(overflow)\":%lld", g_nbykey ? "," : "", g_bykey_over);
        sb_adds(&b, "},\"last\":");
        sb_adds(&b, g_last ? g_last : "{}");
        sb_adds(&b, "}");
        pthread_mutex_unlock(&g_mu);
        int k = respond(x, 200, "application/json", b.p, b.len, NULL);
        sb_free(&b);
        return k;
    }
    if (n == strlen("/_mock/reset") && !strncmp(r->target, "/_mock/reset", n) &&
        strcmp(r->method, "POST") == 0) {
        pthread_mutex_lock(&g_mu);
        g_connections = 0;
        g_requests = 0;
        kc_reset(g_bykey, &g_nbykey, &g_bykey_over);
        kc_reset(g_steps, &g_nsteps, &g_steps_over);
        free(g_last);
        g_last = NULL;
        pthread_mutex_unlock(&g_mu);
        return respond(x, 200, "application/json", "{}", 2, NULL);
    }
    static const char nf[] =
        "{\"error\":{\"message\":\"unknown mock endpoint\",\"type\":\"mock\","
        "\"code\":\"mock404\"}}";
    return respond(x, 404, "application/json", nf, sizeof nf - 1, NULL);
}

/* ------------------------------------------------------------------ */
/* per-request dispatch                                                */

static int handle(conn_t *c, req_t *r)
{
    ctx_t x;
    memset(&x, 0, sizeof x);
    x.c = c;
    x.r = r;
    x.keep = r->keep;
    if (strncmp(r->target, "/_mock/", 7) == 0 || strcmp(r->target, "/_mock") == 0)
        return handle_mock(&x);

    extract_model(r, x.model, sizeof x.model);
    char *cred = credential(r);
    const char *xm = hget(r, "x-mock");
    if (xm && !*xm) xm = NULL;
    const char *script = xm ? xm : (strcmp(cred, "-") ? cred : "");

    /* step counter per (credential, x-mock script) pair */
    sb_t sk = {0};
    sb_adds(&sk, cred);
    sb_addc(&sk, '\n');
    if (xm) sb_adds(&sk, xm);

    sb_t echo = {0};
    build_echo(&echo, r, LAST_BODY_MAX);

    pthread_mutex_lock(&g_mu);
    g_requests++;
    kc_bump(g_bykey, &g_nbykey, &g_bykey_over, cred);
    long long idx = kc_bump(g_steps, &g_nsteps, &g_steps_over, sk.p);
    char *old = g_last;
    g_last = echo.p;
    if (g_log) {
        fprintf(g_log, "%s %s %s %zu\n", cred, r->method, r->target, r->blen);
        fflush(g_log);
    }
    pthread_mutex_unlock(&g_mu);
    free(old);
    sb_free(&sk);

    char *step = pick_step(script, idx);
    int keep = run_step(&x, step);
    free(step);
    free(cred);
    return keep;
}

static void send_error_close(conn_t *c, int code)
{
    ctx_t x;
    memset(&x, 0, sizeof x);
    x.c = c;
    x.keep = 0;
    sb_t b = {0};
    sb_addf(&b, "{\"error\":{\"message\":\"mock error %d\",\"type\":\"mock\","
                "\"code\":\"mock%d\"}}", code, code);
    respond(&x, code, "application/json", b.p, b.len, NULL);
    sb_free(&b);
    conn_drain_close(c);
}

static void *conn_main(void *arg)
{
    conn_t *c = arg;
    for (;;) {
        req_t r;
        int rc = read_request(c, &r);
        if (rc == RQ_OK) {
            int keep = handle(c, &r);
            req_free(&r);
            if (!keep) break;
            continue;
        }
        req_free(&r);
        if (rc == RQ_BAD) send_error_close(c, 400);
        else if (rc == RQ_HEAD_BIG) send_error_close(c, 431);
        else if (rc == RQ_BODY_BIG) send_error_close(c, 413);
        break;
    }
    conn_close(c);
    free(c);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* main                                                                */

static void on_term(int sig)
{
    (void)sig;
    _exit(0);
}

static void usage(void)
{
    fprintf(stderr, "usage: mockup [--port N] [--port-file PATH] [--log PATH]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    long port = 0;
    const char *port_file = NULL, *log_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) usage();
        if (strcmp(a, "--port") == 0) port = (long)parse_ll(argv[++i], -1, -1, 65536);
        else if (strcmp(a, "--port-file") == 0) port_file = argv[++i];
        else if (strcmp(a, "--log") == 0) log_path = argv[++i];
        else usage();
        if (port < 0 || port > 65535) usage();
    }

    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    if (log_path) {
        g_log = fopen(log_path, "a");
        if (!g_log) {
            perror(log_path);
            return 1;
        }
    }

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ls < 0) {
        perror("socket");
        return 1;
    }
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&sin, sizeof sin) < 0) {
        perror("bind");
        return 1;
    }
    if (listen(ls, 1024) < 0) {
        perror("listen");
        return 1;
    }
    socklen_t sl = sizeof sin;
    getsockname(ls, (struct sockaddr *)&sin, &sl);
    unsigned actual = ntohs(sin.sin_port);

    if (port_file) {
        size_t pl = strlen(port_file);
        char *tmp = xrealloc(NULL, pl + 8);
        snprintf(tmp, pl + 8, "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%u\n", actual) < 0 || fclose(f) != 0 ||
            rename(tmp, port_file) != 0) {
            perror(port_file);
            return 1;
        }
        free(tmp);
    }
    printf("mockup listening on 127.0.0.1:%u\n", actual);
    fflush(stdout);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 512 * 1024);

    for (;;) {
        int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM)
                usleep(10000);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct timeval tv = {IDLE_SECS, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        pthread_mutex_lock(&g_mu);
        g_connections++;
        pthread_mutex_unlock(&g_mu);
        conn_t *c = malloc(sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->rst = 0;
        c->rpos = c->rlen = 0;
        pthread_t t;
        if (pthread_create(&t, &attr, conn_main, c) != 0) {
            close(fd);
            free(c);
            usleep(10000);
        }
    }
}
