/* Starts a real evbusd for integration tests: its own temporary directory,
 * configuration and ipc:// endpoint (no port to race for), readiness polled
 * from its log with a deadline, and a stop that always reaps the process.
 * The daemon gets PR_SET_PDEATHSIG, so it dies with a crashed test too. */
#ifndef EVBUS_TEST_HARNESS_H
#define EVBUS_TEST_HARNESS_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct harness {
    char dir[256];      /* temporary directory, removed by harness_cleanup() */
    char config[300];   /* dir/evbus.yaml */
    char endpoint[300]; /* ipc://dir/ingest.sock */
    char log[300];      /* dir/evbusd.log: the daemon's stderr */
    pid_t pid;
    int starts; /* how many times started: readiness counts log lines */
    /* When non-zero, the daemon starts with RLIMIT_NOFILE soft = hard = this
     * (set between fork and exec), as a service manager would give it. */
    unsigned long nofile;
} harness;

/* Creates the directory and writes a configuration: region test-1, the
 * ingest endpoint, a data directory, and `extra_yaml` appended verbatim (may
 * be NULL). When extra_yaml starts with "region:" it replaces test-1. */
void harness_init(harness *h, const char *extra_yaml);

/* The same, with `ingest_yaml` (may be NULL) added under ingest:, each of
 * its lines indented by the caller by two spaces (e.g. "  http:\n    listen:
 * ...\n"). */
void harness_init_ingest(harness *h, const char *ingest_yaml, const char *extra_yaml);

/* Starts evbusd and waits (up to 10 s) until it logs that it is ready.
 * Returns false if it exited or did not become ready. */
bool harness_start(harness *h);

/* SIGTERM, then waits up to 10 s (SIGKILL after that). Returns the exit
 * status, or -1 when it had to be killed or was not running. */
int harness_stop(harness *h);

/* kill -9 and reap. */
void harness_kill9(harness *h);

/* Stops the daemon if running and removes the directory. */
void harness_cleanup(harness *h);

/* Removes `dir`, a directory the test made itself (mkdtemp), unless
 * EVBUS_KEEP_TEST_DIRS is set, and empties the string; "" is a no-op. */
void harness_remove_dir(char *dir);

/* Path of a built binary ("evbusd", "evbus") from EVBUS_BIN_DIR. */
const char *harness_bin(const char *name);

/* Runs a shell command, captures up to outlen-1 bytes of stdout into out, and
 * returns its exit status (or -1). */
int harness_run(const char *cmd, char *out, size_t outlen);

/* Reads the daemon's log into buf (NUL-terminated). */
void harness_read_log(const harness *h, char *buf, size_t len);

#endif
