/* moto_server for bench/sinks: one server with signature checking on
 * (INITIAL_NO_AUTH_ACTION_COUNT=4, the calls that make an IAM user and its
 * key), resources made through tests/support/aws_tool.py (boto3), and
 * delivered events counted from evbusd's /metrics, since the instant
 * responder is not in the way here. */
#ifndef BENCH_SINKS_MOTO_RUN_H
#define BENCH_SINKS_MOTO_RUN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct moto_server {
    pid_t pid;
    char dir[4000]; /* its log's directory */
    char endpoint[64];
} moto_server;

/* Starts moto_server on a free loopback port, waits until it answers,
 * creates the IAM user and exports its key as AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY for the evbusd started later. 0, or -1 with why
 * filled (moto_server or boto3 missing, or it did not start). */
int moto_server_start(moto_server *m, const char *tmpdir, char *why, size_t whylen);

/* Runs `aws_tool.py CMD ENDPOINT REGION NAME` and writes its first line of
 * output (the queue URL, ...) into out. 0, or -1 with err filled. */
int moto_create(const moto_server *m, const char *cmd, const char *name, char *out, size_t len,
                char *err, size_t errlen);

/* Polls evbusd's /metrics on metrics_port until evbus_target_delivered_total
 * reaches want; *eps gets the events/s between the first poll that saw a
 * delivery and the last. Gives up when *pid exits or deliveries stall. */
int moto_wait_delivered(int metrics_port, uint64_t want, pid_t *pid, double *eps, char *err,
                        size_t errlen);

/* Stops and reaps the server; removes its directory unless keep. */
void moto_server_stop(moto_server *m, int keep);

#endif
