#ifndef RELAY_STREAM_H
#define RELAY_STREAM_H
/* A response body on its way from an upstream to a client: decoded from
 * the upstream's framing, framed for the client (chunked or not), with
 * backpressure (bytes are pulled only while the client's output buffer
 * has room), and its usage read on the way by JSON meaning (usage.h):
 * from each SSE event of a stream (sse.h), from the whole of any other
 * body. Events are forwarded whole as soon as they are complete; one
 * larger than the event buffer is passed on in pieces as it arrives, so
 * memory stays bounded whatever the event size. It reports what
 * happened; the exchange decides what that means. */
#include <stddef.h>
#include <stdint.h>

#include "sse.h"
#include "usage.h"

struct server_conn;
struct upstream;

struct stream {
	int sse;		/* text/event-stream: events are assembled */
	int client_chunked;	/* the client's body is chunked by us */
	int drop_usage;		/* hide the usage-only chunk (the relay
				 * asked for usage, the client did not) */
	int anthropic;		/* errors in Anthropic's shape */
	char *ev;		/* owned: SSE bytes of the event being
				 * assembled, NULL until the first stream */
	size_t ev_len, ev_cap;
	size_t ev_parsed;	/* bytes of ev the SSE reader has taken */
	size_t ev_emitted;	/* of those, already passed on */
	int ev_ended;		/* ev[0..ev_parsed) is a whole event */
	int ev_passing;		/* the event outgrew ev: passed on as read */
	int ev_drop;		/* the ended event is not passed on */
	struct sse reader;	/* SSE framing */
	struct usage_scan scan;	/* the current JSON document */
	uint64_t body_bytes;	/* decoded body bytes relayed */
	uint64_t content_bytes;	/* content delivered (usage.h) */
	int has_usage;		/* the provider reported usage */
	int usage_final;	/* ... its last word (not message_start's) */
	const char *usage_bad;	/* invalid usage: why (static), or NULL */
	struct usage usage;	/* what it reported, merged */
	struct usage_doc doc;	/* a non-stream body: what it said; of a
				 * stream id (the first event's), status
				 * (the latest) and, once finished, the
				 * merged usage */
};

/* Ready for a new body; the buffers stay for reuse. */
void stream_reset(struct stream *s);

/* Free the buffers. */
void stream_free(struct stream *s);

/* The head is known: start reading the body (sse and client_chunked
 * set). */
void stream_start(struct stream *s);

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

/* The client has gone: read the rest of the body for its usage only
 * (`disconnect drain`), as far as the upstream has it now. */
enum stream_status stream_drain(struct stream *s, struct upstream *u,
    uint64_t now_ms, const char **why);

/* The body is complete: the usage of a non-stream body (and its id and
 * status, in s->doc); of a stream, s->doc gets the usage its events
 * reported, merged, beside the first id and the latest status. */
void stream_finish(struct stream *s);

/* Append an SSE `error` event in the client's framing (SPEC §4: a
 * stream that breaks after its head ends visibly), in Anthropic's shape
 * on Anthropic paths. */
void stream_error_event(struct stream *s, struct server_conn *sc,
    const char *why);

#endif
