/* Unit tests for path: request targets that could climb out of a
 * provider's base path are refused, every ordinary API path passes. */
#include <string.h>

#include "path.h"
#include "t.h"

static const char *
check(const char *target)
{
	const char *q = strchr(target, '?');
	struct view p = { target, q ? (size_t)(q - target) : strlen(target) };
	struct view qv = { q ? q : "", q ? strlen(q) : 0 };

	return path_check(p, qv);
}

int
main(void)
{
	static const char *const good[] = {
		"/", "/healthz", "/v1/models", "/v1/chat/completions",
		"/v1/responses/resp_123/input_items?limit=10&order=desc",
		"/v1/contents/generations/tasks/cgt-2025-x",
		"/v1/models/gpt-5.2", "/v1/files/file-abc%20def",
		"/v1/messages?beta=true", "/v1/a.b/c..d/.e", "/v1/x@y:z",
		"/admin/wallets/acme/credit",
	};
	static const char *const bad[][2] = {
		{ "/v1/../../x", "dot segment in the path" },
		{ "/v1/./chat/completions", "dot segment in the path" },
		{ "/v1/chat/..", "dot segment in the path" },
		{ "/v1/%2e%2e/x", "encoded dot, slash or backslash in the path" },
		{ "/v1/%2E%2E/x", "encoded dot, slash or backslash in the path" },
		{ "/v1/..%2fx", "encoded dot, slash or backslash in the path" },
		{ "/v1/a%2Fb", "encoded dot, slash or backslash in the path" },
		{ "/v1/a%5cb", "encoded dot, slash or backslash in the path" },
		{ "/v1\\..\\x", "backslash in the path" },
		{ "/v1//chat/completions", "empty path segment" },
		{ "/v1/contents/generations/tasks/", "empty path segment" },
		{ "//v1/models", "empty path segment" },
		{ "/v1/models#frag", "fragment in the request target" },
		{ "/v1/models?x=1#frag", "fragment in the request target" },
		{ "/v1/%252e%252e/x",
		    "encoded '%', '#', '?' or control character in the path" },
		{ "/v1/a%23b", "encoded '%', '#', '?' or control character in "
		    "the path" },
		{ "/v1/a%3F", "encoded '%', '#', '?' or control character in "
		    "the path" },
		{ "/v1/a%00", "encoded '%', '#', '?' or control character in "
		    "the path" },
		{ "/v1/a%zz", "bad percent escape in the path" },
		{ "/v1/a%2", "bad percent escape in the path" },
		{ "/v1/a%", "bad percent escape in the path" },
		{ "/v1/a b", "character not allowed in the path" },
		{ "/v1/\xc3\xa9", "character not allowed in the path" },
		{ "/v1/a\"b", "character not allowed in the path" },
		{ "/v1/x?a=\\", "character not allowed in the query" },
		{ "http://evil.example/v1/models",
		    "the request target must be a path starting with /" },
		{ "*", "the request target must be a path starting with /" },
		{ "", "the request target must be a path starting with /" },
	};
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		const char *why = check(good[i]);

		ok(why == NULL, "accepted: %s (%s)", good[i], why ? why : "");
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = check(bad[i][0]);

		ok_str(why, bad[i][1], bad[i][0]);
	}
	return t_done("path");
}
