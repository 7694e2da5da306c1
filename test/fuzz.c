/*
 * libFuzzer target over the parsers of src/'s pure core: the config, the word
 * splitter, the envfile, the history and rev matching, ref and path
 * checks, supervisord's XML-RPC answers. The first byte picks which; the
 * rest is the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "order.h"
#include "rpcparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[ERRLEN], *s, **w;
	struct config c;
	struct event *ev;
	struct release *r;
	size_t nev, nr;

	if (size < 1)
		return 0;
	s = malloc(size);
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0] % 6) {
	case 0:
		config_init(&c);
		config_parse(&c, (const char *)data + 1, size - 1, "f", err,
		    sizeof(err));
		config_free(&c);
		break;
	case 1:
		free_words(split_words(s, err, sizeof(err)));
		break;
	case 2:
		if (envfile_parse((const char *)data + 1, size - 1, "e", &w,
		    err, sizeof(err)) == 0)
			free_words(w);
		break;
	case 3: {
		char *names[] = { s, "0123456789abcdef0123456789abcdef01234567" };
		int isdir[] = { 1, 1 };
		long cur;

		history_parse((const char *)data + 1, size - 1, &ev, &nev);
		releases_build(ev, nev, names, isdir, 2, &r, &nr);
		rev_match(r, nr, s);
		cur = release_find(r, nr, s);
		prune_select(r, nr, 2, cur, rollback_target(r, nr, cur));
		free(ev);
		free(r);
		break;
	}
	case 4: {
		int max = rpc_count(s), nv, at;
		struct rpcval *v = malloc(sizeof(*v) * (size_t)max);

		if (rpc_parse(s, v, max, &nv) >= 0)
			for (at = 0; at < nv; at++)
				if (rpc_int(v, at, "pid") == 0)
					(void)rpc_str(v, at, "name");
		free(v);
		break;
	}
	default:
		ref_ok(s);
		relpath_ok(s);
		is_sha(s);
	}
	free(s);
	return 0;
}
