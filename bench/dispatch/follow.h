/* Follows a JSON Lines file that a sink appends to (the example sink
 * evbus_sink_jsonl), the way `tail -f` does, and records every line into a
 * dstats as it appears: an event counts as delivered when its line can be
 * read back, and its latency ends then. */
#ifndef BENCH_FOLLOW_H
#define BENCH_FOLLOW_H

#include <stddef.h>

#include "delivery_stats.h"

typedef struct follower follower;

/* Starts a thread following path (which must exist) from its start, into st
 * (which must outlive the follower). 0 with *out set, or -1 with err. */
int follower_start(const char *path, dstats *st, follower **out, char *err, size_t errlen);

/* Reads what is left of the file, stops the thread and frees it; NULLs *f;
 * accepts NULL. */
void follower_stop(follower **f);

#endif
