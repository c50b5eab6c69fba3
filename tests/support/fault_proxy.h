/* tests/support/fault_proxy.py from C: a fault-injecting HTTP proxy on
 * loopback between evbusd and an AWS service implementation, on a port the
 * proxy picks itself, always stopped (PR_SET_PDEATHSIG covers a crashed
 * test). The modes are described in fault_proxy.py. */
#ifndef EVBUS_TEST_FAULT_PROXY_H
#define EVBUS_TEST_FAULT_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct fault_proxy {
    pid_t pid;
    int port;
    char endpoint[64]; /* http://127.0.0.1:PORT: the sink's `endpoint` */
    char log[300];     /* the proxy's stderr */
} fault_proxy;

/* Starts the proxy in front of `upstream` (http://127.0.0.1:PORT), writing
 * its port file and log into `dir`, and waits (up to 10 s) until it
 * listens. It signs the calls it rewrites (mode `partial`) with
 * AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY of this process's environment,
 * so call it after moto_start(). False on failure, with nothing left
 * running. */
bool fault_proxy_start(fault_proxy *p, const char *upstream, const char *dir);

/* SIGTERM, SIGKILL after 5 s; reaps. Safe to call twice or unstarted. */
void fault_proxy_stop(fault_proxy *p);

/* Injects `mode` into the next `count` calls (-1: until the next call of
 * this), with `delay_ms` for the modes that wait. False if the proxy did not
 * answer within 5 s. */
bool fault_proxy_set(fault_proxy *p, const char *mode, int count, int delay_ms);

/* The proxy's counters as JSON (requests, relayed, injected,
 * ambiguous_entries, ambiguous_ids, busy, token_runs, mode, remaining) into
 * out, NUL-terminated. False if the proxy did not answer within 5 s. */
bool fault_proxy_counters(fault_proxy *p, char *out, size_t len);

#endif
