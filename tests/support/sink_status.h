/* What the sink tests read about their one target: from `evbus status
 * --json` the counters the host keeps (delivered, retried, dead_lettered,
 * target_faults, pending, in_flight) and the plugin's own, a wait with a
 * deadline for one of them; `evbus status` as a person reads it; and whether
 * the daemon's log said something once. Each helper runs the real CLI
 * against the harness's configuration and fails the test itself when it
 * cannot. */
#ifndef EVBUS_TEST_SINK_STATUS_H
#define EVBUS_TEST_SINK_STATUS_H

#include <jansson.h>

#include "harness.h"

/* The first target's entry of `evbus status --json`. The caller owns it
 * (json_decref). */
json_t *sink_status(const harness *h);

/* One number of that entry ("delivered"); 0 when it is absent. */
json_int_t sink_status_num(const harness *h, const char *key);

/* One of the plugin's counters ("messages_sent"); 0 when it is absent. */
json_int_t sink_plugin_counter(const harness *h, const char *key);

/* Polls until the entry's `key` is at least `want`, for up to `seconds`;
 * fails the test with what it saw otherwise. */
void sink_wait_status(const harness *h, const char *key, json_int_t want, int seconds);

/* `evbus status` (text) into out, NUL-terminated. */
void sink_status_text(const harness *h, char *out, size_t len);

/* Asserts that the daemon's log holds `line`, and after its first
 * occurrence nothing more that contains `again` (a fault is logged once,
 * not once per event or call). */
void sink_assert_logged_once(const harness *h, const char *line, const char *again);

#endif
