/* A fixture for the failover tests: a real evbusd with two regions,
 * us-east-1 (the primary) and us-west-2, target `orders` on the regions
 * test sink (tests/plugins/region_sink.c: a line per delivery naming the
 * region), a health endpoint per region served by this process
 * (libmicrohttpd) that a test switches healthy / unhealthy, and helpers that
 * publish, find where each event landed and ask `evbus region status`.
 *
 * Criterion runs each test in a process of its own, so the fixture is one
 * set of globals; TWO_REGIONS_SUITE's .fini stops everything. */
#ifndef EVBUS_TEST_TWO_REGIONS_H
#define EVBUS_TEST_TWO_REGIONS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evbus/evbus.h"
#include "harness.h"

/* tr_health.healthy: 1 healthy, 0 unhealthy, or this: every other check
 * fails, starting with the next one (below any failure_threshold of 2). */
#define TR_FLAPPING 2

typedef struct tr_health {
    struct MHD_Daemon *mhd;
    atomic_int healthy;
    atomic_int answers; /* answered while TR_FLAPPING */
    int port;
} tr_health;

extern harness tr_h;
extern evbus_client_t *tr_client;
extern tr_health tr_east, tr_west;
extern int tr_published; /* events published so far: ev-0 .. ev-(n-1) */
/* YAML lines written under each of the two regions (after its
 * health_check), e.g. "    passive_health: {...}\n"; NULL: none. Set
 * before tr_start. */
extern const char *tr_region_extra;
/* Replaces us-east-1's health_check line (when checks are on), e.g.
 * "    health_check: {calculated: ...}\n"; NULL: the default check. @Pn@
 * stands for the port of tr_more[n]. Set before tr_start. */
extern const char *tr_east_check;
/* More endpoints a test may serve (tr_serve) for its own checks; tr_stop
 * stops those it started. */
#define TR_MORE 4
extern tr_health tr_more[TR_MORE];

/* Milliseconds on a monotonic clock. */
int64_t tr_now_ms(void);

/* Serves a health endpoint answering 200 "OK" while hs->healthy, else 503
 * (TR_FLAPPING: alternately). */
void tr_serve(tr_health *hs);

/* Stops evbusd, the client and the health endpoints (a suite's .fini). */
void tr_stop(void);

/* Writes the configuration and starts evbusd: regions us-east-1 and
 * us-west-2, with checks every second against the health endpoints when
 * `checks` (thresholds 2 and 2), target `orders` (batch_max_events 1
 * unless target_extra sets it) with `target_extra` under it (may be NULL), `extra` at the top level
 * (may be NULL); and a client. Each region's sink instance fails while
 * tr_fail() says so. An `extra` that starts with "region: NAME\n" sets the
 * router's own region (else test-1, which is not one of the two). */
void tr_start(const char *target_extra, const char *extra, bool checks);

/* tr_start with more entries appended to targets: and rules: (YAML list
 * items, may be NULL; @DIR@ in more_targets stands for tr_h.dir). */
void tr_start_full(const char *target_extra, const char *extra, bool checks,
                   const char *more_targets, const char *more_rules);

/* Makes the sink in `region` answer every event with `mode` from now on:
 * "retry" (RETRY, like a 5xx), "fault" (TARGET_FAULT, like a connection
 * refused), "hang" (no answer: the batch times out), or NULL: deliver. */
void tr_fail(const char *region, const char *mode);

/* Publishes ev-N from origin region `origin` (NULL: the router's own) and
 * returns N; asserts it was accepted. */
int tr_publish_from(const char *origin);
int tr_publish(void);

/* The region ev-N was delivered to ("" when not yet). */
void tr_region_of(int n, char *out, size_t len);

/* Waits (up to 30 s) until ev-N is delivered; its region in out. */
void tr_wait_delivered(int n, char *out, size_t len);

/* Publishes `count` events; asserts each lands in `region`. */
void tr_publish_expecting(int count, const char *region);

/* Publishes an event every 50 ms until one lands in `region`; returns the
 * milliseconds from `since` to that event's delivery. */
int64_t tr_publish_until(const char *region, int64_t since);

/* Every published event was delivered: no acked event lost. */
void tr_assert_none_lost(void);

/* Runs `evbus ARGS -c CONFIG`; its output in out; returns its status. */
int tr_cli(const char *args, char *out, size_t len);

/* Waits (up to 15 s) until `evbus region status` shows `want`. */
void tr_wait_status(const char *want);

/* With us-east-1 healthy: fails its checks until traffic has moved to
 * us-west-2, then passes them again until us-east-1 shows healthy (where
 * traffic goes then is the target's failback policy's). */
void tr_fail_over_and_recover(void);

/* Stops evbusd, writes KEY=VALUE into its store's `state` sub-database (as a
 * crash between two commits could leave it), starts it again and connects
 * the producer anew. */
void tr_restart_with_state(const char *key, const char *value);

/* Prints to stderr what explains a failure: `why`, the end of evbusd's log,
 * `evbus status` and `evbus dlq list`, and what each region's instance of
 * the test sink got, with the published events no region has. Every tr_*
 * wait or check calls it before it fails the test; a test may call it
 * before an assertion of its own. */
void tr_dump(const char *why);

#endif
