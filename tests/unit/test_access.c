/* access: the line of a request (escaped, null where nothing is known,
 * the charge's numbers), off by default, a rotated file let go on
 * reopen, a failed write counted. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access.h"
#include "conf.h"
#include "exchange.h"
#include "metrics.h"
#include "server.h"
#include "t.h"

static char dir[] = "/tmp/test_access.XXXXXX";

static const char *
slurp(const char *name)
{
	static char buf[16384];
	char path[256];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	buf[0] = '\0';
	if ((fd = open(path, O_RDONLY)) < 0) {
		return NULL;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void
request(struct server_request *rq, const char *id, const char *method,
    const char *path)
{
	memset(rq, 0, sizeof(*rq));
	snprintf(rq->id, sizeof(rq->id), "%s", id);
	rq->head.method.p = method;
	rq->head.method.n = strlen(method);
	rq->path.p = path;
	rq->path.n = strlen(path);
}

int
main(void)
{
	struct conf c;
	struct server_request rq;
	struct exchange ex;
	struct conf_route route;
	struct conf_model model;
	char path[256], moved[256];
	const char *got;

	if (mkdtemp(dir) == NULL || chdir(dir) < 0) {
		perror("mkdtemp");
		return 1;
	}
	memset(&c, 0, sizeof(c));

	/* Off by default: nothing written, nothing kept. */
	ok_int(access_config(&c), 0, "off");
	ok(!access_on(), "not on");
	request(&rq, "req_1", "GET", "/healthz");
	access_write(&rq, NULL, NULL, "CNY", 200, 1);
	access_flush();
	ok(slurp("access.log") == NULL, "no file when off");

	/* An answer of the relay's own: nulls, zeros; a hostile path is
	 * escaped, so the line stays one JSON object. */
	c.access_log = "access.log";
	ok_int(access_config(&c), 0, "on");
	ok(access_on(), "on");
	request(&rq, "req_2", "POST", "/v1/a\"b\\c\nd");
	access_write(&rq, NULL, NULL, "CNY", 401, 0);
	access_flush();
	got = slurp("access.log");
	ok(got != NULL && strstr(got, ",\"id\":\"req_2\",\"method\":\"POST\","
	    "\"path\":\"/v1/a\\\"b\\\\c\\nd\",\"wallet\":null,\"model\":null,"
	    "\"route\":null,\"currency\":\"CNY\",\"attempts\":0,\"status\":401,"
	    "\"in\":0,\"cached\":0,\"cache_write\":0,\"out\":0,\"cost\":"
	    "\"0.00\",\"ms\":0}\n") != NULL && strncmp(got, "{\"ts\":\"", 7) ==
	    0 && strchr(got, '\n') == got + strlen(got) - 1,
	    "a local answer's line: %s", got ? got : "(none)");

	/* A relayed one: model, route, attempts, what was charged. */
	memset(&ex, 0, sizeof(ex));
	memset(&route, 0, sizeof(route));
	memset(&model, 0, sizeof(model));
	route.text = "openai/gpt-5.2";
	model.alias = "gpt-5.2";
	model.routes = &route;
	model.nroutes = 1;
	ex.model = &model;
	ex.attempts = 2;
	ex.charged = 1;
	ex.charged_tokens[0] = 86;
	ex.charged_tokens[1] = 1920;
	ex.charged_tokens[3] = 300;
	ex.charged_nano = 33742800;
	request(&rq, "req_3", "POST", "/v1/chat/completions");
	access_write(&rq, &ex, "acme", "CNY", 200, 12);
	/* Before the flush, nothing of it is in the file. */
	ok(strstr(slurp("access.log"), "req_3") == NULL, "gathered, not "
	    "written yet");
	access_flush();
	got = slurp("access.log");
	ok(strstr(got, "\"id\":\"req_3\",\"method\":\"POST\",\"path\":"
	    "\"/v1/chat/completions\",\"wallet\":\"acme\",\"model\":"
	    "\"gpt-5.2\",\"route\":\"openai/gpt-5.2\",\"currency\":\"CNY\","
	    "\"attempts\":2,\"status\":200,\"in\":86,\"cached\":1920,"
	    "\"cache_write\":0,\"out\":300,\"cost\":\"0.0337428\",\"ms\":12}\n")
	    != NULL, "a relayed answer's line: %s", got);

	/* Rotation: renamed, then reopened: the next line is in a new
	 * file, the old one keeps what it had. */
	snprintf(path, sizeof(path), "%s/access.log", dir);
	snprintf(moved, sizeof(moved), "%s/access.log.1", dir);
	ok(rename(path, moved) == 0, "rename");
	request(&rq, "req_4", "GET", "/v1/models");
	access_write(&rq, NULL, "acme", "CNY", 200, 0);
	access_reopen();	/* writes req_4 to the old file first */
	request(&rq, "req_5", "GET", "/v1/models");
	access_write(&rq, NULL, "acme", "CNY", 200, 0);
	access_flush();
	got = slurp("access.log.1");
	ok(strstr(got, "req_4") != NULL && strstr(got, "req_5") == NULL,
	    "the gathered line went to the old file");
	got = slurp("access.log");
	ok(got != NULL && strstr(got, "req_5") != NULL &&
	    strstr(got, "req_4") == NULL, "the new file has the next line");

	/* A request's end: counted once; an answer of the relay's own only
	 * once it has one; a client that left first is 499; the wallet
	 * index is let go. c has no wallet: open mode, "default". */
	{
		long w = -1;
		uint64_t before = metrics.answered;

		request(&rq, "req_6", "GET", "/v1/models");
		access_request(&rq, NULL, &c, &w, 5);
		ok(metrics.answered == before && !rq.accounted,
		    "no answer yet: not counted");
		rq.status = 404;
		rq.started_ms = 2;
		access_request(&rq, NULL, &c, &w, 5);
		access_request(&rq, NULL, &c, &w, 9);
		ok(metrics.answered == before + 1 && rq.accounted,
		    "counted once");
		request(&rq, "req_7", "POST", "/v1/chat/completions");
		w = 0;	/* for the last call: an accounted request leaves it */
		ex.charged = 0;
		c.nwallets = 0;
		access_request(&rq, &ex, &c, &(long){ -1 }, 5);
		access_flush();
		got = slurp("access.log");
		ok(strstr(got, "\"id\":\"req_6\",\"method\":\"GET\","
		    "\"path\":\"/v1/models\",\"wallet\":\"default\",") != NULL &&
		    strstr(got, "\"status\":404,") != NULL && strstr(got,
		    "\"ms\":3}") != NULL, "the 404's line: %s", got);
		ok(strstr(got, "\"id\":\"req_7\"") != NULL &&
		    strstr(got, "\"status\":499,") != NULL,
		    "a client that left first: 499");
		access_request(&rq, &ex, &c, &w, 5);
		ok_int(w, 0, "an accounted request leaves the index alone");
	}

	/* The same path on a reload keeps the file; off closes it. */
	ok_int(access_config(&c), 0, "same path");
	c.access_log = "off";
	ok_int(access_config(&c), 0, "off again");
	ok(!access_on(), "off");

	/* A file that cannot be opened: -1 and off. */
	c.access_log = "/nonexistent-dir/access.log";
	ok_int(access_config(&c), -1, "cannot open");
	ok(!access_on(), "off after a failed open");
	access_close();

	unlink(path);
	unlink(moved);
	rmdir(dir);
	return t_done("access");
}
