/* What the HTTP ingest's integration tests share: an evbusd with
 * ingest.http on a free loopback port and access keys, the boto3 client
 * (http_client.py), and what evbusd stored and delivered. */
#ifndef EVBUS_HTTP_TEST_UTIL_H
#define EVBUS_HTTP_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "harness.h"

/* The key that may publish com.example.* sources (in http.keys). */
#define KEY    "AKIDEVBUSTEST1"
#define SECRET "s3cr3t/KEY+value"

/* Starts evbusd with the HTTP ingest on a free loopback port (returned),
 * credentials http.keys in h->dir (KEY limited to com.example.*, and
 * AKIDOTHER), and a rule sending com.example.* to the JSON-lines sink's
 * h->dir/out.jsonl. `http_extra` adds keys under ingest.http (indented four
 * spaces), `ingest_extra` under ingest (two). Fails the test when evbusd
 * does not start. */
int http_test_start(harness *h, const char *http_extra, const char *ingest_extra);

/* Runs http_client.py with printf-style arguments; its one line of JSON in
 * out. Fails the test when the client exits non-zero. */
__attribute__((format(printf, 3, 4))) void http_test_client(char *out, size_t outlen,
                                                            const char *fmt, ...);

/* The lines of h->dir/out.jsonl that contain `needle`, waiting up to 20 s
 * for at least `want` of them. */
int http_test_delivered(const harness *h, const char *needle, int want);

/* Stops evbusd and returns the events it stored (accepted, not duplicates),
 * as it logs them when it stops: the store forgets events once delivered. */
uint64_t http_test_stored_events(harness *h);

#endif
