/* A real moto_server for the AWS tests: on a free loopback port, signature
 * checking on (INITIAL_NO_AUTH_ACTION_COUNT=4: exactly the calls that create
 * an IAM user, its access key and an allow-all policy), always stopped. The
 * server gets PR_SET_PDEATHSIG, so it dies with a crashed test too. */
#ifndef EVBUS_TEST_MOTO_H
#define EVBUS_TEST_MOTO_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct moto {
    pid_t pid;
    int port;
    char endpoint[64]; /* http://127.0.0.1:PORT */
    char key_id[64];   /* the IAM user's access key */
    char secret[128];
    char log[300]; /* the server's output */
} moto;

/* Starts moto_server (logging into `log_path`), waits until it answers (up
 * to 15 s), creates the IAM user and key, and exports AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY (and AWS_DEFAULT_REGION) to this process, so that
 * aws_tool() calls and an evbusd started later use them. False on failure,
 * with the server stopped. */
bool moto_start(moto *m, const char *log_path);

/* SIGTERM, then SIGKILL after 5 s; reaps. Safe to call twice. */
void moto_stop(moto *m);

/* A port the kernel just handed out on loopback, or -1 (also used by the
 * other servers the tests start). */
int moto_free_port(void);

/* True when something accepts connections on 127.0.0.1:port. */
bool moto_port_answers(int port);

/* Runs tests/support/aws_tool.py with the given arguments (a shell-quoted
 * string) and captures stdout. Returns its exit status. */
int aws_tool(const char *args, char *out, size_t outlen);

#endif
