/*
 * mockup: a scriptable mock upstream LLM provider for Relay's end-to-end
 * tests.  Standalone test program, not part of the relay binary.
 *
 *   build/mockup [--port N] [--port-file PATH] [--log PATH]
 *                [--tls-cert PATH --tls-key PATH [--tls-port N]
 *                 [--tls-port-file PATH] [--tls-ciphers LIST]
 *                 [--tls-no-tickets] [--tls-no-resume]]
 *
 * One detached thread per connection, blocking sockets, HTTP/1.1 with
 * keep-alive.  Per-request behaviour is picked by a "script" taken from the
 * x-mock request header or, failing that, from the credential.  See
 * tests/e2e/README.md for the full list of steps and observation endpoints.
 * Volcengine Ark video-task paths (.../contents/generations/tasks[/<id>])
 * skip the scripts and are served by handle_task().
 *
 * All socket data of a connection goes through conn_read()/conn_write(),
 * which use OpenSSL on TLS connections (--tls-cert) and plain recv()/send()
 * otherwise.
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

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#define HEAD_MAX      (64 * 1024)          /* request head limit */
#define RBUF_SIZE     (HEAD_MAX + 8 * 1024) /* per-connection read buffer */
#define BODY_MAX      (64 * 1024 * 1024)   /* request body limit */
#define HDRS_MAX      1000                 /* request header field count */
#define KEYS_MAX      256                  /* per-credential table entries */
#define LAST_BODY_MAX (1024 * 1024)        /* body bytes kept for stats.last */
#define IDLE_SECS     300                  /* keep-alive idle / read timeout */
#define HS_SECS       10                   /* TLS handshake timeout */
#define MODEL_MAX     256
#define RAW_KEEP      16                   /* requests kept for /_mock/raw */

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
static SSL_CTX *g_ssl_ctx;          /* NULL unless --tls-cert */
static long long g_tls_handshakes, g_tls_resumed, g_tls_failed;
static char *g_tls_err;             /* reason of the last failed handshake */
#define FILE_DIRS_MAX 8
static const char *g_file_dirs[FILE_DIRS_MAX]; /* --files: wire corpus folders */
static int g_nfile_dirs;

/* The last RAW_KEEP non-/_mock requests as received, oldest first, for
 * GET /_mock/raw: the head byte for byte (request line to the blank line)
 * and the body (de-chunked when it came chunked; at most LAST_BODY_MAX
 * bytes kept, body_bytes is the full size). */
typedef struct {
    char *head;
    size_t hlen;
    char *body;
    size_t blen;
    size_t body_bytes;
    char sha256[65];    /* of the whole body, hex */
} raw_t;
static raw_t g_raw[RAW_KEEP];
static int g_nraw;

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
    int tls;               /* accepted on a TLS listener */
    int tls_dead;          /* fatal TLS error: no close_notify on close */
    SSL *ssl;              /* set once the TLS handshake has started */
    char *tls_info;        /* JSON object describing the TLS session */
    int started;           /* a request head has been read */
    size_t rpos, rlen;
    char rbuf[RBUF_SIZE];
} conn_t;

/* Classify a failed SSL_read/SSL_write: fatal errors forbid SSL_shutdown. */
static void conn_ssl_error(conn_t *c, int r)
{
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_SSL) c->tls_dead = 1;
    ERR_clear_error();
}

static ssize_t conn_read(conn_t *c, void *buf, size_t n)
{
    if (c->ssl) {
        if (c->tls_dead) return -1;
        int want = n > INT_MAX ? INT_MAX : (int)n;
        ERR_clear_error();
        int r = SSL_read(c->ssl, buf, want);
        if (r > 0) return r;
        /* close_notify, or (SSL_OP_IGNORE_UNEXPECTED_EOF) a bare TCP EOF */
        if (SSL_get_error(c->ssl, r) == SSL_ERROR_ZERO_RETURN) {
            ERR_clear_error();
            return 0;
        }
        conn_ssl_error(c, r);
        return -1;
    }
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
    if (c->ssl) {
        if (c->tls_dead) return -1;
        while (n > 0) {
            int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
            ERR_clear_error();
            int w = SSL_write(c->ssl, p, chunk); /* blocking: all or error */
            if (w <= 0) {
                conn_ssl_error(c, w);
                return -1;
            }
            p += w;
            n -= (size_t)w;
        }
        return 0;
    }
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

/* TLS: send close_notify once (the TLS counterpart of a FIN), unless the
 * connection is to be reset or TLS already failed. */
static void conn_tls_notify(conn_t *c)
{
    if (!c->ssl || c->rst || c->tls_dead || !SSL_is_init_finished(c->ssl) ||
        (SSL_get_shutdown(c->ssl) & SSL_SENT_SHUTDOWN))
        return;
    struct timeval tv = {1, 0}; /* never hang on a peer that stopped reading */
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    ERR_clear_error();
    SSL_shutdown(c->ssl);
    ERR_clear_error();
}

static void conn_close(conn_t *c)
{
    if (c->fd < 0) return;
    if (c->ssl) {
        conn_tls_notify(c);
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    free(c->tls_info);
    c->tls_info = NULL;
    if (c->rst) {
        struct linger lg = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(c->fd);
    c->fd = -1;
}

/* Half-close and swallow what the client still sends for a short while, so
 * an error response is not destroyed by an RST caused by unread data.  The
 * swallowed bytes are discarded, so they are read raw (also under TLS, after
 * the close_notify). */
static void conn_drain_close(conn_t *c)
{
    static char scratch[16384];
    conn_tls_notify(c);
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
        ssize_t n = recv(c->fd, scratch, sizeof scratch, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
    }
    conn_close(c);
}

/* Server side of the TLS handshake, with a short timeout so silent or
 * garbage-sending clients cannot pin a thread.  0 ok, -1 failed. */
static int conn_tls_accept(conn_t *c)
{
    c->ssl = SSL_new(g_ssl_ctx);
    if (!c->ssl || !SSL_set_fd(c->ssl, c->fd)) {
        c->tls_dead = 1;
        ERR_clear_error();
        return -1;
    }
    struct timeval hs = {HS_SECS, 0}, idle = {IDLE_SECS, 0}, none = {0, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &hs, sizeof hs);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &hs, sizeof hs);
    ERR_clear_error();
    int r = SSL_accept(c->ssl);
    int saved_errno = errno;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof idle);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof none);

    if (r == 1) {
        int resumed = SSL_session_reused(c->ssl) ? 1 : 0;
        const char *sni = SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
        sb_t j = {0};
        sb_adds(&j, "{\"version\":");
        sb_json_strz(&j, SSL_get_version(c->ssl));
        sb_adds(&j, ",\"cipher\":");
        sb_json_strz(&j, SSL_get_cipher_name(c->ssl));
        sb_adds(&j, ",\"sni\":");
        if (sni) sb_json_strz(&j, sni);
        else sb_adds(&j, "null");
        sb_addf(&j, ",\"resumed\":%s}", resumed ? "true" : "false");
        c->tls_info = j.p;
        pthread_mutex_lock(&g_mu);
        g_tls_handshakes++;
        g_tls_resumed += resumed;
        pthread_mutex_unlock(&g_mu);
        return 0;
    }
    int e = SSL_get_error(c->ssl, r);
    unsigned long le = ERR_peek_last_error();
    const char *why = le ? ERR_reason_error_string(le) : NULL;
    char tmp[64];
    if (!why) {
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            why = "handshake timeout";
        else if (e == SSL_ERROR_SYSCALL && saved_errno)
            why = strerror_r(saved_errno, tmp, sizeof tmp);
        else if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN)
            why = "eof during handshake";
        else
            why = "handshake failed";
    }
    char *w = xstrdup(why);
    ERR_clear_error();
    c->tls_dead = 1;
    pthread_mutex_lock(&g_mu);
    g_tls_failed++;
    char *old = g_tls_err;
    g_tls_err = w;
    pthread_mutex_unlock(&g_mu);
    free(old);
    return -1;
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
    char *raw_head; /* owned; the head as received (head is parsed in place) */
    size_t raw_len;
    char *method, *target, *version;
    hdr_t *h;
    int nh;
    char *body;
    size_t blen;
    int keep;
} req_t;

enum { RQ_OK, RQ_EOF, RQ_IO, RQ_BAD, RQ_HEAD_BIG, RQ_BODY_BIG,
       RQ_EARLY_KEEP,   /* answered early, body swallowed: next request */
       RQ_EARLY_CLOSE   /* answered early, then closed (or to be reset) */
};

static void req_free(req_t *r)
{
    free(r->head);
    free(r->raw_head);
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

static int read_head(conn_t *c, char **out, size_t *outlen)
{
    for (;;) {
        /* a TLS ClientHello (record type 22) sent to a plain listener: answer
         * 400 at once instead of waiting for a head that never comes */
        if (!c->ssl && !c->started && c->rpos < c->rlen &&
            (unsigned char)c->rbuf[c->rpos] == 0x16)
            return RQ_BAD;
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
            *outlen = end - c->rpos;
            c->rpos = end;
            c->started = 1;
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

static int early_answer(conn_t *c, req_t *r, const char *xm);

static int read_request(conn_t *c, req_t *r)
{
    memset(r, 0, sizeof *r);
    int rc = read_head(c, &r->head, &r->raw_len);
    if (rc != RQ_OK) return rc;
    r->raw_head = xstrndup(r->head, r->raw_len);
    rc = parse_head(r);
    if (rc != RQ_OK) return rc;
    /* x-mock "early...": answered on the head alone, before the body */
    const char *xm = hget(r, "x-mock");
    if (xm && strncmp(xm, "early", 5) == 0 && (xm[5] == 0 || xm[5] == ':'))
        return early_answer(c, r, xm);
    return read_body(c, r);
}

/* ------------------------------------------------------------------ */
/* request inspection                                                  */

enum { K_CHAT, K_MSG, K_RESP, K_EMB, K_MODELS, K_IMAGE, K_AUDIO, K_FILE };

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
    /* the multipart/form-data endpoints (OpenAI's answer shapes) */
    if (ends_with(r->target, n, "/images/edits") ||
        ends_with(r->target, n, "/images/variations"))
        return K_IMAGE;
    if (ends_with(r->target, n, "/audio/transcriptions") ||
        ends_with(r->target, n, "/audio/translations"))
        return K_AUDIO;
    if (ends_with(r->target, n, "/files") && strcmp(r->method, "POST") == 0)
        return K_FILE;
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
    const char *xconn; /* x-mock-connection: tokens added to Connection */
    sb_t xh;           /* x-mock-header values: extra response head lines */
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
    sb_adds(h, x->keep ? "Connection: keep-alive" : "Connection: close");
    if (x->xconn) sb_addf(h, ", %s", x->xconn);
    sb_adds(h, "\r\n");
    if (x->step) sb_addf(h, "X-Mock-Step: %s\r\n", x->step);
    if (extra) sb_adds(h, extra);
    if (x->xh.len) sb_add(h, x->xh.p, x->xh.len);
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

/* x-mock "early[:CODE[:drain|close|stop[:MS]]]" (the whole header value,
 * not a step of a script): answer CODE (default 413) as soon as the head
 * is in, before reading any body byte, like a server that refuses a body
 * on its head alone.  Then:
 *   drain  read and discard the body; the connection stays usable (default)
 *   close  half-close and swallow what the client still sends for 1 s, close
 *   stop   read nothing more for MS ms (default 1000), then reset (RST)
 * Counted in `requests`; `by_key`, `last` and the step counters are not
 * touched.  Returns RQ_EARLY_KEEP, RQ_EARLY_CLOSE or an RQ_ error. */
static int early_answer(conn_t *c, req_t *r, const char *xm)
{
    char arg[64];
    snprintf(arg, sizeof arg, "%s", xm[5] ? xm + 6 : "");
    char *mode = strchr(arg, ':'), *ms = NULL;
    if (mode) {
        *mode++ = 0;
        ms = strchr(mode, ':');
        if (ms) *ms++ = 0;
    }
    int code = (int)parse_ll(arg, 413, 200, 599);
    const char *m = mode && *mode ? mode : "drain";
    int drain = strcmp(m, "drain") == 0, stop = strcmp(m, "stop") == 0;

    pthread_mutex_lock(&g_mu);
    g_requests++;
    pthread_mutex_unlock(&g_mu);

    ctx_t x;
    memset(&x, 0, sizeof x);
    x.c = c;
    x.r = r;
    x.step = "early";
    x.keep = drain && r->keep;
    sb_t b = {0};
    sb_addf(&b, "{\"error\":{\"message\":\"mock early %d\",\"type\":\"mock\","
                "\"code\":\"mock%d\"}}", code, code);
    int keep = respond(&x, code, "application/json", b.p, b.len, NULL);
    sb_free(&b);
    if (drain) {
        int rc = read_body(c, r);       /* discarded by the caller */
        if (rc != RQ_OK) return rc;
        return keep ? RQ_EARLY_KEEP : RQ_EARLY_CLOSE;
    }
    if (stop) {
        (void)wait_ms(c, parse_ll(ms, 1000, 0, 600000));
        c->rst = 1;                     /* unread data: the close resets */
        return RQ_EARLY_CLOSE;
    }
    conn_drain_close(c);
    return RQ_EARLY_CLOSE;
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
    case K_IMAGE:   /* gpt-image-1: usage in input/output tokens */
        sb_addf(b, "{\"created\":1700000000,\"data\":[{\"b64_json\":"
                   "\"aGVsbG8gZnJvbSBtb2Nr\"}],\"usage\":{\"input_tokens\":50,"
                   "\"input_tokens_details\":{\"image_tokens\":40,"
                   "\"text_tokens\":10},\"output_tokens\":1056,"
                   "\"total_tokens\":1106}}");
        break;
    case K_AUDIO:   /* gpt-4o-transcribe: token usage */
        sb_addf(b, "{\"text\":\"hello from mock\",\"usage\":{\"type\":"
                   "\"tokens\",\"input_tokens\":14,\"output_tokens\":5,"
                   "\"total_tokens\":19}}");
        break;
    case K_FILE:
        sb_addf(b, "{\"id\":\"file-mock1\",\"object\":\"file\",\"bytes\":0,"
                   "\"created_at\":1700000000,\"filename\":\"upload\","
                   "\"purpose\":\"assistants\",\"status\":\"processed\"}");
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

/* Write d[0..n) one byte per conn_write (a send() each: the socket has
 * TCP_NODELAY), us microseconds apart. */
static int write_bytewise(conn_t *c, const char *d, size_t n, long long us)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && us > 0) usleep((useconds_t)us);
        if (conn_write(c, d + i, 1) < 0) return -1;
    }
    return 0;
}

enum { SSE_CHUNKED, SSE_BYTEWISE, SSE_EOF };

/* SSE stream: n content events ms apart.  cut >= 0: send only cut events,
 * then close without the terminating chunk.  mode SSE_BYTEWISE: every body
 * byte is its own 1-byte chunk and the whole response (head, chunk
 * framing, data, last chunk) goes out one byte per write, us microseconds
 * apart.  SSE_EOF: no framing header, the events as they are, then close. */
static int do_sse_mode(ctx_t *x, long long n, long long ms, long long cut,
                       int mode, long long us)
{
    int kind = path_kind(x->r);
    if (kind == K_EMB || kind == K_MODELS) kind = K_CHAT;
    int usage = json_flag_true(x->r, "\"include_usage\"");
    if (mode == SSE_EOF) x->keep = 0;
    sb_t h = {0};
    head_build(&h, x, 200, "text/event-stream", mode == SSE_EOF ? -2 : -1,
               "Cache-Control: no-cache\r\n");
    int rc = mode == SSE_BYTEWISE ? write_bytewise(x->c, h.p, h.len, us)
                                  : head_send(x, &h);
    sb_free(&h);
    if (rc < 0) return 0;
    sb_t e = {0};
    long long sent = 0;
    for (long long i = 0;; i++) {
        sb_clear(&e);
        if (!gen_event(&e, kind, i, n, usage, x->model)) break;
        if (cut >= 0 && sent >= cut) break;
        if (i > 0 && ms > 0 && wait_ms(x->c, ms) < 0) { sb_free(&e); return 0; }
        if (mode == SSE_BYTEWISE) {
            for (size_t k = 0; k < e.len && rc == 0; k++) {
                char one[6] = {'1', '\r', '\n', e.p[k], '\r', '\n'};
                rc = write_bytewise(x->c, one, sizeof one, us);
            }
        } else if (mode == SSE_EOF) {
            rc = conn_write(x->c, e.p, e.len);
        } else {
            rc = write_chunk(x->c, e.p, e.len);
        }
        if (rc < 0) { sb_free(&e); return 0; }
        sent++;
    }
    sb_free(&e);
    if (cut >= 0 || mode == SSE_EOF) return 0;
    if (mode == SSE_BYTEWISE) {
        if (write_bytewise(x->c, "0\r\n\r\n", 5, us) < 0) return 0;
    } else if (conn_write(x->c, "0\r\n\r\n", 5) < 0) {
        return 0;
    }
    return x->keep;
}

static int do_sse(ctx_t *x, long long n, long long ms, long long cut)
{
    return do_sse_mode(x, n, ms, cut, SSE_CHUNKED, 0);
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

/* "eof": an ok answer framed by the close alone (no Content-Length, no
 * chunked), then close; a stream goes the same way. */
static int do_eof(ctx_t *x)
{
    int kind = path_kind(x->r);
    if (kind != K_MODELS && json_flag_true(x->r, "\"stream\""))
        return do_sse_mode(x, 5, 0, -1, SSE_EOF, 0);
    x->keep = 0;
    sb_t b = {0};
    body_for_kind(&b, kind, x->model);
    sb_t h = {0};
    head_build(&h, x, 200, "application/json", -2, NULL);
    sb_add(&h, b.p, b.len);
    (void)conn_write(x->c, h.p, h.len);
    sb_free(&h);
    sb_free(&b);
    return 0;
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
    if (strcmp(name, "ssebytes") == 0)
        return do_sse_mode(x, parse_ll(a1, 5, 0, 1000000), 0, -1, SSE_BYTEWISE,
                           parse_ll(a2, 0, 0, 1000000));
    if (strcmp(name, "eof") == 0) return do_eof(x);
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
    if (strcmp(name, "okclose") == 0) {
        (void)do_ok(x);     /* answered as keep-alive, then closed */
        return 0;
    }
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
/* x-mock-file: a recorded wire answer served byte for byte            */
/*                                                                     */
/*   x-mock-file: NAME          the file NAME in a --files folder (the  */
/*                              first that has it): a whole HTTP answer */
/*                              (status line, head, body as framed)     */
/*   x-mock-file-step: N[:US]   write it N bytes at a time, US micro-   */
/*                              seconds apart                           */
/*   x-mock-file-cut: K         stop after K bytes and close (FIN)      */
/*   x-mock-file-pause: K[:MS]  after K bytes wait MS ms (default       */
/*                              30000) or until the peer goes away      */
/*                                                                     */
/* NAME is [A-Za-z0-9._-], not starting with '.', so it never leaves   */
/* the folder.  The connection is kept only when the file's own head   */
/* frames its body (Content-Length or chunked, no "Connection: close") */
/* and the request allows it.                                          */

static int file_name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 200 || n[0] == '.') return 0;
    for (const char *p = n; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
            return 0;
    return 1;
}

/* Read dir/name whole; NULL when absent or unreadable. */
static char *file_load(const char *name, size_t *len)
{
    for (int i = 0; i < g_nfile_dirs; i++) {
        sb_t path = {0};
        sb_addf(&path, "%s/%s", g_file_dirs[i], name);
        FILE *f = fopen(path.p, "rb");
        sb_free(&path);
        if (!f) continue;
        sb_t d = {0};
        char buf[65536];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0) sb_add(&d, buf, n);
        int bad = ferror(f);
        fclose(f);
        if (bad || d.len > (size_t)BODY_MAX * 4) {
            sb_free(&d);
            return NULL;
        }
        if (!d.p) sb_add(&d, "", 0);
        *len = d.len;
        return d.p;
    }
    return NULL;
}

/* Does the head (up to the blank line) say the body ends with the
 * connection? */
static int file_close_delimited(const char *d, size_t n)
{
    size_t end = n;
    for (size_t i = 0; i + 3 < n; i++)
        if (!memcmp(d + i, "\r\n\r\n", 4)) { end = i; break; }
    int framed = 0, close = 0;
    const char *p = d, *e = d + end;
    while (p < e) {
        const char *eol = memchr(p, '\n', (size_t)(e - p));
        size_t l = eol ? (size_t)(eol - p) : (size_t)(e - p);
        if (l > 15 && !strncasecmp(p, "content-length:", 15)) framed = 1;
        if (l > 18 && !strncasecmp(p, "transfer-encoding:", 18)) framed = 1;
        if (l > 11 && !strncasecmp(p, "connection:", 11)) {
            char v[256];
            size_t vl = l - 11 < sizeof v - 1 ? l - 11 : sizeof v - 1;
            memcpy(v, p + 11, vl);
            v[vl] = 0;
            if (vl && v[vl - 1] == '\r') v[vl - 1] = 0;
            if (has_token(v, "close")) close = 1;
        }
        p += l + 1;
    }
    return close || !framed;
}

static int do_file(ctx_t *x, const char *name)
{
    x->step = "file";
    size_t n = 0;
    char *d = file_name_ok(name) ? file_load(name, &n) : NULL;
    if (!d) {
        sb_t q = {0}, m = {0};
        sb_adds(&q, "mock: no wire file ");
        sb_adds(&q, file_name_ok(name) ? name : "(bad name)");
        sb_adds(&m, "{\"error\":{\"message\":");
        sb_json_strz(&m, q.p);
        sb_adds(&m, ",\"type\":\"mock\",\"code\":\"mock404\"}}");
        int k = respond(x, 404, "application/json", m.p, m.len, NULL);
        sb_free(&q);
        sb_free(&m);
        return k;
    }
    const char *st = hget(x->r, "x-mock-file-step");
    long long step = 0, us = 0;
    if (st) {
        char a[64];
        snprintf(a, sizeof a, "%s", st);
        char *c2 = strchr(a, ':');
        if (c2) {
            *c2++ = 0;
            us = parse_ll(c2, 0, 0, 10000000);
        }
        step = parse_ll(a, 0, 0, LLONG_MAX);
    }
    long long cut = parse_ll(hget(x->r, "x-mock-file-cut"), -1, 0, LLONG_MAX);
    long long pause_at = -1, pause_ms = 30000;
    const char *ps = hget(x->r, "x-mock-file-pause");
    if (ps) {
        char a[64];
        snprintf(a, sizeof a, "%s", ps);
        char *c2 = strchr(a, ':');
        if (c2) {
            *c2++ = 0;
            pause_ms = parse_ll(c2, 30000, 0, 86400000);
        }
        pause_at = parse_ll(a, -1, 0, LLONG_MAX);
    }
    size_t end = cut >= 0 && (unsigned long long)cut < n ? (size_t)cut : n;
    int keep = x->keep && cut < 0 && !file_close_delimited(d, n);
    size_t pos = 0;
    int rc = 0;
    while (pos < end) {
        size_t piece = end - pos;
        if (step > 0 && (unsigned long long)step < piece) piece = (size_t)step;
        if (pause_at >= 0 && (size_t)pause_at > pos && (size_t)pause_at < pos + piece)
            piece = (size_t)pause_at - pos;
        if (pos > 0 && us > 0) usleep((useconds_t)us);
        if (conn_write(x->c, d + pos, piece) < 0) { rc = -1; break; }
        pos += piece;
        if (pause_at >= 0 && pos == (size_t)pause_at && pos < end &&
            wait_ms(x->c, pause_ms) < 0) {
            rc = -1; /* the peer went away during the pause */
            break;
        }
    }
    free(d);
    return rc < 0 ? 0 : keep;
}

/* ------------------------------------------------------------------ */
/* Volcengine Ark asynchronous video tasks                             */
/*                                                                     */
/*   POST   .../contents/generations/tasks       create -> {"id":...}  */
/*   GET    .../contents/generations/tasks/<id>  poll                  */
/*   DELETE .../contents/generations/tasks/<id>  cancel                */
/*                                                                     */
/* Matched by suffix, so any prefix (/v1, /api/v3) works.  These paths */
/* skip the step scripts; only a creation's x-mock "task:K" or         */
/* "taskfail:K" is read.  A task is owned by the credential that       */
/* created it.                                                         */

#define TASKS_MAX 1024 /* task table; the oldest task is evicted when full */
#define TASK_ID_MAX 32

typedef struct {
    char id[TASK_ID_MAX];
    char *key;             /* creator credential ("-" when none) */
    char model[MODEL_MAX]; /* raw, still JSON-escaped */
    long long k;           /* final from the k-th poll on */
    long long polls;       /* polls by the creator */
    int fail;              /* taskfail:K */
    int cancelled;
} task_t;

static task_t g_tasks[TASKS_MAX]; /* oldest first; under g_mu */
static int g_ntasks;
static long long g_task_seq; /* last id number handed out */

static const char TASKS_SUFFIX[] = "/contents/generations/tasks";

enum { TP_NONE, TP_COLL, TP_ITEM };

/* Classify r->target (query ignored, trailing '/' ignored).  For TP_ITEM,
 * *id and *idlen get the last path segment. */
static int task_path(const req_t *r, const char **id, size_t *idlen)
{
    const char *t = r->target;
    size_t n = strcspn(t, "?#");
    while (n > 1 && t[n - 1] == '/') n--;
    if (ends_with(t, n, TASKS_SUFFIX)) return TP_COLL;
    const char *slash = NULL;
    for (size_t i = n; i > 0; i--)
        if (t[i - 1] == '/') {
            slash = t + i - 1;
            break;
        }
    if (!slash || slash + 1 >= t + n) return TP_NONE;
    if (!ends_with(t, (size_t)(slash - t), TASKS_SUFFIX)) return TP_NONE;
    *id = slash + 1;
    *idlen = (size_t)(t + n - (slash + 1));
    return TP_ITEM;
}

static const char *task_status(const task_t *k)
{
    if (k->cancelled) return "cancelled";
    if (k->polls >= k->k) return k->fail ? "failed" : "succeeded";
    return "running";
}

/* Index of task id, -1 when unknown.  Call with g_mu held. */
static int task_find(const char *id, size_t idlen)
{
    if (idlen >= TASK_ID_MAX) return -1;
    for (int i = 0; i < g_ntasks; i++)
        if (strlen(g_tasks[i].id) == idlen && memcmp(g_tasks[i].id, id, idlen) == 0)
            return i;
    return -1;
}

/* Call with g_mu held. */
static void tasks_reset(void)
{
    for (int i = 0; i < g_ntasks; i++) free(g_tasks[i].key);
    memset(g_tasks, 0, sizeof g_tasks);
    g_ntasks = 0;
    g_task_seq = 0;
}

/* x-mock "task[:K]" / "taskfail[:K]" (K >= 1, default 2); anything else
 * means task:2. */
static void task_script(const char *xm, int *fail, long long *k)
{
    *fail = 0;
    *k = 2;
    if (!xm) return;
    while (isspace((unsigned char)*xm)) xm++;
    size_t n = strlen(xm);
    while (n > 0 && isspace((unsigned char)xm[n - 1])) n--;
    char *s = xstrndup(xm, n);
    char *arg = strchr(s, ':');
    if (arg) *arg++ = 0;
    if (strcmp(s, "task") == 0 || strcmp(s, "taskfail") == 0) {
        *fail = s[4] != 0;
        *k = parse_ll(arg, 2, 1, LLONG_MAX);
    }
    free(s);
}

static int task_error(ctx_t *x, int code, const char *msg, const char *extra)
{
    sb_t b = {0};
    sb_adds(&b, "{\"error\":{\"message\":");
    sb_json_strz(&b, msg);
    sb_addf(&b, ",\"type\":\"mock\",\"code\":\"mock%d\"}}", code);
    int k = respond(x, code, "application/json", b.p, b.len, extra);
    sb_free(&b);
    return k;
}

/* Body of a GET answer for task k.  Call with g_mu held. */
static void task_body(sb_t *b, const task_t *k)
{
    const char *st = task_status(k);
    sb_addf(b, "{\"id\":\"%s\",\"model\":\"%s\",\"status\":\"%s\"", k->id, k->model, st);
    if (strcmp(st, "succeeded") == 0)
        sb_adds(b, ",\"content\":{\"video_url\":\"https://example.invalid/video.mp4\"},"
                   "\"usage\":{\"completion_tokens\":108900,\"total_tokens\":108900},"
                   "\"created_at\":1700000000,\"updated_at\":1700000100}");
    else if (strcmp(st, "failed") == 0)
        sb_adds(b, ",\"error\":{\"code\":\"OutputVideoSensitiveContentDetected\","
                   "\"message\":\"mock failure\"}}");
    else
        sb_adds(b, ",\"created_at\":1700000000,\"updated_at\":1700000000}");
}

/* Handle a task path (kind TP_COLL or TP_ITEM).  Returns the keep flag. */
static int handle_task(ctx_t *x, int kind, const char *id, size_t idlen,
                       const char *cred, const char *xm)
{
    req_t *r = x->r;
    x->step = "task";
    if (kind == TP_COLL) {
        if (strcmp(r->method, "POST") != 0)
            return task_error(x, 405, "mock: use POST to create a task",
                              "Allow: POST\r\n");
        task_t t;
        memset(&t, 0, sizeof t);
        task_script(xm, &t.fail, &t.k);
        snprintf(t.model, sizeof t.model, "%s", x->model);
        t.key = xstrdup(cred);
        pthread_mutex_lock(&g_mu);
        if (g_ntasks == TASKS_MAX) { /* evict the oldest */
            free(g_tasks[0].key);
            memmove(g_tasks, g_tasks + 1, sizeof g_tasks[0] * (TASKS_MAX - 1));
            g_ntasks--;
        }
        snprintf(t.id, sizeof t.id, "cgt-mock-%lld", ++g_task_seq);
        g_tasks[g_ntasks++] = t;
        pthread_mutex_unlock(&g_mu);
        sb_t b = {0};
        sb_addf(&b, "{\"id\":\"%s\"}", t.id);
        int k = respond(x, 200, "application/json", b.p, b.len, NULL);
        sb_free(&b);
        return k;
    }
    int get = strcmp(r->method, "GET") == 0;
    if (!get && strcmp(r->method, "DELETE") != 0)
        return task_error(x, 405, "mock: use GET or DELETE on a task",
                          "Allow: GET, DELETE\r\n");
    sb_t b = {0};
    int code = 200;
    pthread_mutex_lock(&g_mu);
    int i = task_find(id, idlen);
    if (i < 0) {
        code = 404;
    } else if (strcmp(g_tasks[i].key, cred) != 0) {
        code = 403;
    } else if (get) {
        task_t *t = &g_tasks[i];
        if (t->polls < LLONG_MAX) t->polls++;
        task_body(&b, t);
    } else {
        g_tasks[i].cancelled = 1;
        sb_adds(&b, "{}");
    }
    pthread_mutex_unlock(&g_mu);
    int k;
    if (code == 404) k = task_error(x, 404, "task not found", NULL);
    else if (code == 403) k = task_error(x, 403, "task belongs to another key", NULL);
    else k = respond(x, 200, "application/json", b.p, b.len, NULL);
    sb_free(&b);
    return k;
}

/* ------------------------------------------------------------------ */
/* observation endpoints                                               */

static void raw_free(raw_t *w)
{
    free(w->head);
    free(w->body);
    memset(w, 0, sizeof *w);
}

/* Keep request r for /_mock/raw, dropping the oldest when full. */
static void raw_push(const req_t *r)
{
    raw_t w;
    w.hlen = r->raw_len;
    w.head = xstrndup(r->raw_head ? r->raw_head : "", r->raw_head ? r->raw_len : 0);
    w.body_bytes = r->blen;
    w.blen = r->blen < LAST_BODY_MAX ? r->blen : LAST_BODY_MAX;
    w.body = xstrndup(r->body ? r->body : "", r->body ? w.blen : 0);
    {
        unsigned char md[32];
        unsigned int mdlen = 0;
        EVP_Digest(r->body ? r->body : "", r->body ? r->blen : 0, md, &mdlen,
                   EVP_sha256(), NULL);
        for (unsigned i = 0; i < 32; i++)
            snprintf(w.sha256 + 2 * i, 3, "%02x", md[i]);
    }
    pthread_mutex_lock(&g_mu);
    if (g_nraw == RAW_KEEP) {
        raw_free(&g_raw[0]);
        memmove(g_raw, g_raw + 1, sizeof g_raw[0] * (RAW_KEEP - 1));
        memset(&g_raw[RAW_KEEP - 1], 0, sizeof g_raw[0]);
        g_nraw--;
    }
    g_raw[g_nraw++] = w;
    pthread_mutex_unlock(&g_mu);
}

static void sb_base64(sb_t *s, const char *d, size_t n)
{
    sb_addc(s, '"');
    size_t out = 4 * ((n + 2) / 3);
    sb_reserve(s, out + 1);
    if (n) EVP_EncodeBlock((unsigned char *)s->p + s->len, (const unsigned char *)d, (int)n);
    s->len += out;
    s->p[s->len] = 0;
    sb_addc(s, '"');
}

static int handle_mock(ctx_t *x)
{
    req_t *r = x->r;
    size_t n = strcspn(r->target, "?#");
    if (n == strlen("/_mock/stats") && !strncmp(r->target, "/_mock/stats", n) &&
        strcmp(r->method, "GET") == 0) {
        sb_t b = {0};
        pthread_mutex_lock(&g_mu);
        sb_addf(&b, "{\"connections\":%lld,\"requests\":%lld,"
                    "\"tls_handshakes\":%lld,\"tls_resumed\":%lld,"
                    "\"tls_failed\":%lld,\"tls_last_error\":",
                g_connections, g_requests, g_tls_handshakes, g_tls_resumed,
                g_tls_failed);
        if (g_tls_err) sb_json_strz(&b, g_tls_err);
        else sb_adds(&b, "null");
        sb_adds(&b, ",\"by_key\":{");
        for (int i = 0; i < g_nbykey; i++) {
            if (i) sb_addc(&b, ',');
            sb_json_strz(&b, g_bykey[i].key);
            sb_addf(&b, ":%lld", g_bykey[i].n);
        }
        if (g_bykey_over)
            sb_addf(&b, "%s\"(overflow)\":%lld", g_nbykey ? "," : "", g_bykey_over);
        sb_adds(&b, "},\"tasks\":{");
        for (int i = 0; i < g_ntasks; i++) {
            sb_addf(&b, "%s\"%s\":{\"polls\":%lld,\"status\":\"%s\",\"key\":",
                    i ? "," : "", g_tasks[i].id, g_tasks[i].polls,
                    task_status(&g_tasks[i]));
            sb_json_strz(&b, g_tasks[i].key);
            sb_addc(&b, '}');
        }
        sb_adds(&b, "},\"last\":");
        sb_adds(&b, g_last ? g_last : "{}");
        sb_adds(&b, "}");
        pthread_mutex_unlock(&g_mu);
        int k = respond(x, 200, "application/json", b.p, b.len, NULL);
        sb_free(&b);
        return k;
    }
    if (n == strlen("/_mock/raw") && !strncmp(r->target, "/_mock/raw", n) &&
        strcmp(r->method, "GET") == 0) {
        sb_t b = {0};
        sb_adds(&b, "{\"requests\":[");
        pthread_mutex_lock(&g_mu);
        for (int i = 0; i < g_nraw; i++) {
            sb_adds(&b, i ? ",{\"head\":" : "{\"head\":");
            sb_base64(&b, g_raw[i].head, g_raw[i].hlen);
            sb_adds(&b, ",\"body\":");
            sb_base64(&b, g_raw[i].body, g_raw[i].blen);
            sb_addf(&b, ",\"body_bytes\":%zu,\"body_sha256\":\"%s\"",
                    g_raw[i].body_bytes, g_raw[i].sha256);
            if (g_raw[i].blen < g_raw[i].body_bytes) sb_adds(&b, ",\"body_truncated\":true");
            sb_addc(&b, '}');
        }
        pthread_mutex_unlock(&g_mu);
        sb_adds(&b, "]}");
        int k = respond(x, 200, "application/json", b.p, b.len, NULL);
        sb_free(&b);
        return k;
    }
    if (n == strlen("/_mock/reset") && !strncmp(r->target, "/_mock/reset", n) &&
        strcmp(r->method, "POST") == 0) {
        pthread_mutex_lock(&g_mu);
        g_connections = 0;
        g_requests = 0;
        g_tls_handshakes = g_tls_resumed = g_tls_failed = 0;
        free(g_tls_err);
        g_tls_err = NULL;
        kc_reset(g_bykey, &g_nbykey, &g_bykey_over);
        kc_reset(g_steps, &g_nsteps, &g_steps_over);
        tasks_reset();
        free(g_last);
        g_last = NULL;
        for (int i = 0; i < g_nraw; i++) raw_free(&g_raw[i]);
        g_nraw = 0;
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

    raw_push(r);
    x.xconn = hget(r, "x-mock-connection");
    for (int i = 0; i < r->nh; i++) {
        if (strcmp(r->h[i].name, "x-mock-header") != 0) continue;
        sb_adds(&x.xh, r->h[i].value);
        sb_adds(&x.xh, "\r\n");
    }
    extract_model(r, x.model, sizeof x.model);
    char *cred = credential(r);
    const char *xm = hget(r, "x-mock");
    if (xm && !*xm) xm = NULL;
    const char *script = xm ? xm : (strcmp(cred, "-") ? cred : "");

    const char *tid = NULL;
    size_t tidlen = 0;
    int tkind = task_path(r, &tid, &tidlen);

    /* step counter per (credential, x-mock script) pair */
    sb_t sk = {0};
    sb_adds(&sk, cred);
    sb_addc(&sk, '\n');
    if (xm) sb_adds(&sk, xm);

    sb_t echo = {0};
    build_echo(&echo, r, LAST_BODY_MAX);
    if (c->tls_info) { /* stats.last only: the echo step is unchanged */
        echo.len--;    /* drop the closing brace */
        sb_adds(&echo, ",\"tls\":");
        sb_adds(&echo, c->tls_info);
        sb_addc(&echo, '}');
    }

    pthread_mutex_lock(&g_mu);
    g_requests++;
    kc_bump(g_bykey, &g_nbykey, &g_bykey_over, cred);
    /* task paths count as requests but never advance a script */
    long long idx = tkind == TP_NONE ? kc_bump(g_steps, &g_nsteps, &g_steps_over, sk.p) : 0;
    char *old = g_last;
    g_last = echo.p;
    if (g_log) {
        fprintf(g_log, "%s %s %s %zu\n", cred, r->method, r->target, r->blen);
        fflush(g_log);
    }
    pthread_mutex_unlock(&g_mu);
    free(old);
    sb_free(&sk);

    const char *xf = hget(r, "x-mock-file");
    if (xf && *xf) {
        int keep = do_file(&x, xf);
        free(cred);
        sb_free(&x.xh);
        return keep;
    }

    if (tkind != TP_NONE) {
        int keep = handle_task(&x, tkind, tid, tidlen, cred, xm);
        free(cred);
        sb_free(&x.xh);
        return keep;
    }

    char *step = pick_step(script, idx);
    int keep = run_step(&x, step);
    free(step);
    free(cred);
    sb_free(&x.xh);
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
    if (c->tls && conn_tls_accept(c) < 0) {
        conn_drain_close(c); /* so a TLS alert is not lost to an RST */
        free(c);
        return NULL;
    }
    for (;;) {
        req_t r;
        int rc = read_request(c, &r);
        if (rc == RQ_OK) {
            int keep = handle(c, &r);
            req_free(&r);
            if (!keep) break;
            continue;
        }
        if (rc == RQ_EARLY_KEEP) {
            req_free(&r);
            continue;
        }
        if (rc == RQ_EARLY_CLOSE) {
            req_free(&r);
            break;
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
    fprintf(stderr,
            "usage: mockup [--port N] [--port-file PATH] [--log PATH]\n"
            "              [--tls-cert PATH --tls-key PATH [--tls-port N]\n"
            "               [--tls-port-file PATH] [--tls-ciphers LIST]\n"
            "               [--tls-no-tickets] [--tls-no-resume]]\n"
            "              [--files DIR]...\n");
    exit(2);
}

static void tls_die(const char *what, const char *arg)
{
    unsigned long e = ERR_peek_error(); /* the root cause */
    fprintf(stderr, "mockup: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "",
            e ? ERR_reason_error_string(e) : "failed");
    exit(1);
}

/* Default TLS 1.2 suites: ECDHE with AES-GCM or ChaCha20-Poly1305, which is
 * what the relay's BearSSL client offers.  TLS 1.3 keeps OpenSSL's list. */
#define TLS12_CIPHERS                                                       \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"            \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"            \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

static SSL_CTX *tls_setup(const char *cert, const char *key, const char *ciphers,
                          int no_tickets, int no_resume)
{
    const char *files[2][2] = {{"--tls-cert", cert}, {"--tls-key", key}};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(files[i][1], "r");
        if (!f) {
            fprintf(stderr, "mockup: %s %s: %s\n", files[i][0], files[i][1],
                    strerror(errno));
            exit(1);
        }
        fclose(f);
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) tls_die("SSL_CTX_new", NULL);
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
        tls_die("min version", NULL);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
    if (!SSL_CTX_set_cipher_list(ctx, ciphers ? ciphers : TLS12_CIPHERS))
        tls_die("--tls-ciphers", ciphers);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        tls_die("--tls-cert", cert);
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        tls_die("--tls-key", key);
    if (SSL_CTX_check_private_key(ctx) != 1) tls_die("key does not match", cert);
    static const unsigned char sid_ctx[] = "mockup";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
    SSL_CTX_set_timeout(ctx, 7200);
    if (no_resume) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(ctx, 0);
    } else {
        /* session ids (TLS 1.2) and, unless --tls-no-tickets, tickets */
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(ctx, 20480);
        if (no_tickets) SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    }
    ERR_clear_error();
    return ctx;
}

/* Listening socket on 127.0.0.1:port; *actual gets the bound port. */
static int open_listener(long port, unsigned *actual)
{
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ls < 0) {
        perror("socket");
        exit(1);
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
        exit(1);
    }
    if (listen(ls, 1024) < 0) {
        perror("listen");
        exit(1);
    }
    socklen_t sl = sizeof sin;
    getsockname(ls, (struct sockaddr *)&sin, &sl);
    *actual = ntohs(sin.sin_port);
    return ls;
}

/* Write "port\n" to path via a temporary name and rename. */
static void write_port_file(const char *path, unsigned port)
{
    size_t pl = strlen(path);
    char *tmp = xrealloc(NULL, pl + 8);
    snprintf(tmp, pl + 8, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%u\n", port) < 0 || fclose(f) != 0 ||
        rename(tmp, path) != 0) {
        perror(path);
        exit(1);
    }
    free(tmp);
}

int main(int argc, char **argv)
{
    long port = 0, tls_port = -1;
    const char *port_file = NULL, *log_path = NULL;
    const char *tls_cert = NULL, *tls_key = NULL, *tls_port_file = NULL;
    const char *tls_ciphers = NULL;
    int no_tickets = 0, no_resume = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--tls-no-tickets") == 0) { no_tickets = 1; continue; }
        if (strcmp(a, "--tls-no-resume") == 0) { no_resume = 1; continue; }
        if (i + 1 >= argc) usage();
        if (strcmp(a, "--port") == 0) port = (long)parse_ll(argv[++i], -1, -1, 65536);
        else if (strcmp(a, "--port-file") == 0) port_file = argv[++i];
        else if (strcmp(a, "--log") == 0) log_path = argv[++i];
        else if (strcmp(a, "--tls-cert") == 0) tls_cert = argv[++i];
        else if (strcmp(a, "--tls-key") == 0) tls_key = argv[++i];
        else if (strcmp(a, "--tls-port") == 0)
            tls_port = (long)parse_ll(argv[++i], -2, -2, 65536);
        else if (strcmp(a, "--tls-port-file") == 0) tls_port_file = argv[++i];
        else if (strcmp(a, "--tls-ciphers") == 0) tls_ciphers = argv[++i];
        else if (strcmp(a, "--files") == 0) {
            if (g_nfile_dirs == FILE_DIRS_MAX) usage();
            g_file_dirs[g_nfile_dirs++] = argv[++i];
        }
        else usage();
        if (port < 0 || port > 65535) usage();
        if (tls_port < -1 || tls_port > 65535) usage();
    }
    int tls_any = tls_cert || tls_key || tls_port >= 0 || tls_port_file ||
                  tls_ciphers || no_tickets || no_resume;
    if (tls_any && !tls_cert) usage();
    if (tls_port_file && tls_port < 0) usage();
    if (tls_cert && !tls_key) tls_key = tls_cert; /* combined PEM */

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
    if (tls_cert)
        g_ssl_ctx = tls_setup(tls_cert, tls_key, tls_ciphers, no_tickets, no_resume);

    /* lfd[0]: the main listener (TLS when --tls-cert without --tls-port);
     * lfd[1]: the extra TLS listener of --tls-port. */
    int lfd[2], ltls[2], nl = 1;
    unsigned actual, tls_actual = 0;
    lfd[0] = open_listener(port, &actual);
    ltls[0] = tls_cert && tls_port < 0;
    if (tls_port >= 0) {
        lfd[1] = open_listener(tls_port, &tls_actual);
        ltls[1] = 1;
        nl = 2;
    }
    if (port_file) write_port_file(port_file, actual);
    if (tls_port_file) write_port_file(tls_port_file, tls_actual);
    printf("mockup listening on 127.0.0.1:%u\n", actual);
    if (nl == 2) printf("mockup tls listening on 127.0.0.1:%u\n", tls_actual);
    fflush(stdout);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 512 * 1024);

    int one = 1;
    struct pollfd pfd[2];
    for (int i = 0; i < nl; i++) pfd[i] = (struct pollfd){lfd[i], POLLIN, 0};
    for (;;) {
        if (poll(pfd, (nfds_t)nl, -1) < 0) continue;
        for (int i = 0; i < nl; i++) {
            if (!(pfd[i].revents & POLLIN)) continue;
            int fd = accept4(lfd[i], NULL, NULL, SOCK_CLOEXEC);
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
            c->tls = ltls[i];
            c->tls_dead = 0;
            c->ssl = NULL;
            c->tls_info = NULL;
            c->started = 0;
            c->rpos = c->rlen = 0;
            pthread_t t;
            if (pthread_create(&t, &attr, conn_main, c) != 0) {
                close(fd);
                free(c);
                usleep(10000);
            }
        }
    }
}
