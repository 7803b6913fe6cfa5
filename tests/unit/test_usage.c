/* Unit tests for usage: usage read by JSON meaning from every shape the
 * providers document, in any white space, escapes, field order and
 * split, and never from a "usage" anywhere else. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "usage.h"

/* Scan doc whole, then again fed one byte at a time and in two halves at
 * every split point of a short one: all must agree. */
static void
scan(const char *doc, struct usage_doc *d)
{
	size_t n = strlen(doc), i, cut;
	struct usage_scan s;
	struct usage_doc e;

	usage_scan_all(doc, n, d);
	usage_scan_start(&s);
	for (i = 0; i < n; i++) {
		usage_scan_feed(&s, doc + i, 1);
	}
	usage_scan_end(&s, &e);
	ok(memcmp(d, &e, sizeof(e)) == 0, "byte at a time agrees: %.60s", doc);
	for (cut = 0; n < 400 && cut <= n; cut++) {
		usage_scan_start(&s);
		usage_scan_feed(&s, doc, cut);
		usage_scan_feed(&s, doc + cut, n - cut);
		usage_scan_end(&s, &e);
		if (memcmp(d, &e, sizeof(e)) != 0) {
			ok(0, "split at %zu agrees: %.60s", cut, doc);
			break;
		}
	}
}

static void
want(const char *name, const char *doc, int found, uint64_t in,
    uint64_t cached, uint64_t cw, uint64_t out)
{
	struct usage_doc d;

	scan(doc, &d);
	ok(d.valid, "%s: valid", name);
	ok_int(d.found, found, name);
	if (found) {
		ok_int(d.invalid, 0, name);
		ok_int(d.usage.in, in, name);
		ok_int(d.usage.cached, cached, name);
		ok_int(d.usage.cache_write, cw, name);
		ok_int(d.usage.out, out, name);
	}
}

static void
test_openai_shapes(void)
{
	want("chat compact",
	    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"choices\":"
	    "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
	    "\"hi\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":"
	    "12,\"completion_tokens\":3,\"total_tokens\":15}}",
	    1, 12, 0, 0, 3);
	want("chat pretty, CRLF, usage first",
	    "{\r\n  \"usage\" : {\r\n    \"prompt_tokens\" : 12 ,\r\n"
	    "    \"completion_tokens\" : 3\r\n  } ,\r\n  \"choices\" : [ ]\r\n}\r\n",
	    1, 12, 0, 0, 3);
	want("cached tokens are part of the prompt",
	    "{\"usage\":{\"prompt_tokens\":2006,\"completion_tokens\":300,"
	    "\"prompt_tokens_details\":{\"cached_tokens\":1920,"
	    "\"audio_tokens\":0},\"completion_tokens_details\":"
	    "{\"reasoning_tokens\":100}}}",
	    1, 86, 1920, 0, 300);
	want("responses object",
	    "{\"id\":\"resp_1\",\"object\":\"response\",\"output\":[],"
	    "\"usage\":{\"input_tokens\":328,\"input_tokens_details\":"
	    "{\"cached_tokens\":128},\"output_tokens\":52,"
	    "\"output_tokens_details\":{\"reasoning_tokens\":0},"
	    "\"total_tokens\":380}}",
	    1, 200, 128, 0, 52);
	want("embeddings",
	    "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
	    "\"embedding\":[0.0023,-0.0093,1e-3]}],\"model\":\"m\",\"usage\":"
	    "{\"prompt_tokens\":8,\"total_tokens\":8}}",
	    1, 8, 0, 0, 0);
	want("deepseek cache hit and miss",
	    "{\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":7,"
	    "\"prompt_cache_hit_tokens\":64,\"prompt_cache_miss_tokens\":36}}",
	    1, 36, 64, 0, 7);
	want("escaped keys are the same keys",
	    "{\"usag\\u0065\":{\"prompt\\u005ftokens\":5,"
	    "\"completion_tokens\":6}}", 1, 5, 0, 0, 6);
	want("stream chunk with usage null", "{\"id\":\"c\",\"choices\":[{"
	    "\"delta\":{\"content\":\"x\"}}],\"usage\":null}", 0, 0, 0, 0, 0);
}

static void
test_anthropic_shapes(void)
{
	struct usage_doc d;

	want("message with cache fields",
	    "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
	    "\"content\":[{\"type\":\"text\",\"text\":\"Hi\"}],\"usage\":"
	    "{\"input_tokens\":4,\"cache_creation_input_tokens\":100000,"
	    "\"cache_read_input_tokens\":0,\"output_tokens\":9}}",
	    1, 4, 0, 100000, 9);
	scan("{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","
	    "\"type\":\"message\",\"content\":[],\"usage\":{\"input_tokens\":25,"
	    "\"cache_read_input_tokens\":2048,\"output_tokens\":1}}}", &d);
	ok(d.found && !d.final, "message_start: found, not final");
	ok_int(d.usage.in, 25, "message_start in");
	ok_int(d.usage.cached, 2048, "message_start cache read");
	ok_int(d.usage.out, 1, "message_start out");
	scan("{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
	    "\"end_turn\"},\"usage\":{\"output_tokens\":15}}", &d);
	ok(d.found && d.final, "message_delta: final");
	ok_int(d.usage.has, USAGE_HAS_OUT, "message_delta reports out only");
	ok_int(d.usage.out, 15, "message_delta out");
	scan("{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
	    "\"text_delta\",\"text\":\"Hello\"}}", &d);
	ok(!d.found, "content_block_delta has no usage");
	ok_int(d.content_bytes, 5, "content_block_delta text bytes");
	ok_str(d.type, "content_block_delta", "type read");
	scan("{\"type\":\"ping\"}", &d);
	ok(d.valid && !d.found, "ping");
}

static void
test_merge(void)
{
	struct usage total;
	struct usage_doc a, b;

	memset(&total, 0, sizeof(total));
	scan("{\"type\":\"message_start\",\"message\":{\"usage\":"
	    "{\"input_tokens\":25,\"cache_creation_input_tokens\":7,"
	    "\"output_tokens\":1}}}", &a);
	scan("{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}",
	    &b);
	usage_merge(&total, &a.usage);
	usage_merge(&total, &b.usage);
	ok_int(total.in, 25, "merged in");
	ok_int(total.cache_write, 7, "merged cache write");
	ok_int(total.out, 15, "merged out (cumulative delta wins)");
}

static void
test_responses_stream(void)
{
	struct usage_doc d;

	/* response.created echoes the request's tools: a tool schema
	 * with a "usage" property is not usage. */
	scan("{\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\","
	    "\"tools\":[{\"type\":\"function\",\"parameters\":{\"properties\":"
	    "{\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}}],"
	    "\"usage\":null}}", &d);
	ok(d.valid && !d.found, "response.created: no usage");
	scan("{\"type\":\"response.output_text.delta\",\"item_id\":\"m\","
	    "\"output_index\":0,\"delta\":\"Hel\\u006co\"}", &d);
	ok(!d.found, "text delta: no usage");
	ok_int(d.content_bytes, 5, "text delta bytes (escape decoded)");
	scan("{\"type\":\"response.completed\",\"sequence_number\":9,"
	    "\"response\":{\"id\":\"resp_1\",\"status\":\"completed\","
	    "\"usage\":{\"input_tokens\":100,\"input_tokens_details\":"
	    "{\"cached_tokens\":40},\"output_tokens\":20000}}}", &d);
	ok(d.found && d.final, "response.completed: final usage");
	ok_int(d.usage.in, 60, "completed in");
	ok_int(d.usage.cached, 40, "completed cached");
	ok_int(d.usage.out, 20000, "completed out");
	/* Field order: the type after the response. */
	scan("{\"response\":{\"usage\":{\"input_tokens\":3,\"output_tokens\":4}},"
	    "\"type\":\"response.completed\"}", &d);
	ok(d.found && d.usage.out == 4, "type after the response");
}

static void
test_nested_usage_ignored(void)
{
	want("usage inside metadata", "{\"metadata\":{\"usage\":{"
	    "\"prompt_tokens\":1,\"completion_tokens\":1}},\"choices\":[]}",
	    0, 0, 0, 0, 0);
	want("usage inside a choice", "{\"choices\":[{\"usage\":{"
	    "\"prompt_tokens\":1}}]}", 0, 0, 0, 0, 0);
	want("usage in a string", "{\"x\":\"\\\"usage\\\":{\\\"prompt_tokens\\\""
	    ":9}\",\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":1}}",
	    1, 2, 0, 0, 1);
}

static void
test_usage_after_a_big_field(void)
{
	size_t n = 300000, i;
	char *b = malloc(n + 20000);
	struct usage_doc d;
	int k;

	k = sprintf(b, "{\"choices\":[{\"message\":{\"content\":\"");
	for (i = 0; i < n; i++) {
		b[k++] = (char)('a' + i % 26);
	}
	k += sprintf(b + k, "\"}}],\"usage\":{\"prompt_tokens\":120000,"
	    "\"completion_tokens\":5},\"metadata\":{\"echo\":\"");
	for (i = 0; i < 10000; i++) {
		b[k++] = 'm';
	}
	b[k] = '\0';
	/* not terminated yet: complete it */
	strcpy(b + k, "\"}}");
	usage_scan_all(b, strlen(b), &d);
	ok(d.found && d.usage.in == 120000 && d.usage.out == 5,
	    "usage between a 300 KB field and 10 KB of metadata");
	ok_int(d.content_bytes, n, "content bytes of the big message");
	free(b);
}

static void
test_usage_only_chunk(void)
{
	struct usage_doc d;

	scan("{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],"
	    "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":12}}", &d);
	ok(d.usage_only, "compact usage-only chunk");
	scan("{\"id\": \"c\", \"choices\": [], \"usage\": {\"prompt_tokens\": 9, "
	    "\"completion_tokens\": 12}}", &d);
	ok(d.usage_only, "usage-only chunk with spaces (json.dumps)");
	scan("{\n  \"choices\" : [\n  ],\n  \"usage\" : {\"prompt_tokens\":9}\n}",
	    &d);
	ok(d.usage_only, "pretty-printed usage-only chunk");
	scan("{\"choices\":[],\"prompt_filter_results\":[{\"prompt_index\":0,"
	    "\"content_filter_results\":{}}]}", &d);
	ok(!d.usage_only, "Azure's prompt filter chunk is not usage-only");
	scan("{\"choices\":[{\"delta\":{}}],\"usage\":{\"prompt_tokens\":9}}", &d);
	ok(!d.usage_only, "a chunk with a choice is not usage-only");
	scan("{\"choices\":[],\"usage\":null}", &d);
	ok(!d.usage_only, "usage null is not usage-only");
}

static void
test_invalid_counts(void)
{
	static const char *bad[] = {
		"{\"usage\":{\"prompt_tokens\":18446744073709551615}}",
		"{\"usage\":{\"prompt_tokens\":1099511627777}}",
		"{\"usage\":{\"prompt_tokens\":-1}}",
		"{\"usage\":{\"prompt_tokens\":1.5}}",
		"{\"usage\":{\"prompt_tokens\":1e12}}",
		"{\"usage\":{\"prompt_tokens\":\"12\"}}",
		"{\"usage\":{\"completion_tokens\":true}}",
		"{\"usage\":{\"prompt_tokens\":{}}}",
		"{\"usage\":{\"prompt_tokens\":5,\"prompt_tokens_details\":"
		    "{\"cached_tokens\":6}}}",
	};
	struct usage_doc d;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		scan(bad[i], &d);
		ok(d.found && d.invalid && d.usage_why != NULL,
		    "invalid usage: %s", bad[i]);
	}
	scan("{\"usage\":{\"prompt_tokens\":1099511627776,"
	    "\"completion_tokens\":0}}", &d);
	ok(d.found && !d.invalid && d.usage.in == USAGE_COUNT_MAX,
	    "2^40 is the largest count");
	scan("{\"usage\":{\"prompt_tokens\":null,\"completion_tokens\":3}}", &d);
	ok(d.found && !d.invalid && d.usage.out == 3 &&
	    !(d.usage.has & USAGE_HAS_IN), "null count: not reported");
}

static void
test_invalid_json(void)
{
	static const char *bad[] = {
		"", "{", "{\"usage\":{\"prompt_tokens\":1}", "[DONE]",
		"{\"a\":1,}", "{\"a\" 1}", "{\"a\":01}", "{\"a\":-}",
		"{\"a\":\"\x01\"}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12g4\"}",
		"{\"a\":tru}", "{\"a\":1} {}", "{\"a\":[1,]}", "{\"a\":1.}",
		"{\"a\":1e}", "{\"a\":[}", "{\"a\":]}", "{\"usage\":{\"prompt_tokens\""
		    ":1}}x",
	};
	struct usage_doc d;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		usage_scan_all(bad[i], strlen(bad[i]), &d);
		ok(!d.valid && !d.found, "invalid JSON: %s", bad[i]);
	}
	{
		char deep[200];

		memset(deep, '[', 65);
		memset(deep + 65, ']', 65);
		usage_scan_all(deep, 130, &d);
		ok(!d.valid, "65 levels are refused");
		usage_scan_all(deep + 1, 128, &d);
		ok(d.valid, "64 levels are read");
	}
	usage_scan_all("  7 ", 4, &d);
	ok(d.valid && !d.found, "a bare number is a JSON document");
}

static void
test_fields(void)
{
	struct usage_doc d;

	scan("{\"id\":\"cgt-2025\\/x\",\"status\":\"succeeded\",\"usage\":"
	    "{\"completion_tokens\":108900,\"total_tokens\":108900}}", &d);
	ok_str(d.id, "cgt-2025/x", "task id (escape decoded)");
	ok_str(d.status, "succeeded", "task status");
	ok_int(d.usage.out, 108900, "task usage");
	scan("{\"type\":\"a\",\"type\":5}", &d);
	ok_str(d.type, "", "a later non-string type wins");
	scan("{\"choices\":[{\"delta\":{\"content\":\"ab\",\"reasoning_content\":"
	    "\"cd\",\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
	    "\"{\\\"x\\\":1}\"}}]}}]}", &d);
	ok_int(d.content_bytes, 2 + 2 + 7, "content, reasoning and tool args");
}

int
main(void)
{
	test_openai_shapes();
	test_anthropic_shapes();
	test_merge();
	test_responses_stream();
	test_nested_usage_ignored();
	test_usage_after_a_big_field();
	test_usage_only_chunk();
	test_invalid_counts();
	test_invalid_json();
	test_fields();
	return t_done("usage");
}
