#ifndef RELAY_STREAM_H
#define RELAY_STREAM_H
/* A response body on its way from an upstream to a client: decoded from
 * the upstream's framing, framed for the client (chunked or not), with
 * backpressure (bytes are pulled only while the client's output buffer
 * has room), and its usage read on the way: from whole SSE events of a
 * stream, from the tail of any other body. It reports what happened; the
 * exchange decides what that means. */
#include <stddef.h>
#include <stdint.h>

struct server_conn;
struct upstream;

struct stream {
	int sse;		/* text/event-stream: events are assembled */
	int client_chunked;	/* the client's body is chunked by us */
	int drop_usage;		/* hide the usage-only chunk (the relay
				 * asked for usage, the client did not) */
	char *ev;		/* owned: SSE bytes of the event being
				 * assembled, NULL until the first stream */
	size_t ev_len, ev_cap;
	char *tail;		/* owned, lazily: the last body bytes (usage
				 * ends every non-stream shape) */
	size_t tail_len;
	uint64_t body_bytes;	/* decoded body bytes relayed */
	int has_usage;
	uint64_t usage_in, usage_out;
};

/* Ready for a new body; the buffers stay for reuse. */
void stream_reset(struct stream *s);

/* Free the buffers. */
void stream_free(struct stream *s);

enum stream_status {
	STREAM_WAIT,		/* more later (input or room) */
	STREAM_DONE,		/* the whole body is in the client's out
				 * buffer, last chunk included */
	STREAM_BROKEN		/* the upstream failed mid-body: *why says
				 * why */
};

/* Move what the upstream has to the client as far as the client's
 * output buffer takes it, writing what the socket takes, until the
 * client or the upstream has nothing more to give. The client's
 * connection must be BUSY. */
enum stream_status stream_pump(struct stream *s, struct upstream *u,
    struct server_conn *sc, uint64_t now_ms, const char **why);

/* The body is complete: read the usage of a non-stream body from its
 * tail. */
void stream_finish(struct stream *s);

/* Append an SSE `error` event in the client's framing (SPEC §4: a
 * stream that breaks after its head ends visibly). */
void stream_error_event(struct stream *s, struct server_conn *sc,
    const char *why);

#endif
