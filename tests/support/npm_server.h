/* The second, independent implementations of the AWS services the sink
 * tests also run against, installed from the lockfile at the repository's
 * root (scripts/install-deps.sh runs npm ci): dynalite (DynamoDB) and
 * local-aws-sqs (SQS). Each starts on a free loopback port and is stopped
 * with moto_stop(); it gets PR_SET_PDEATHSIG, so it dies with a crashed
 * test too. Neither checks signatures. */
#ifndef EVBUS_TEST_NPM_SERVER_H
#define EVBUS_TEST_NPM_SERVER_H

#include <stdbool.h>

#include "moto.h"

/*
 * Starts `impl` ("dynalite" or "local-aws-sqs") logging into `log_path`,
 * and waits until it answers (up to 15 s). Fills m as moto_start() does,
 * with made-up credentials (exported to this process like moto_start()'s,
 * for aws_tool() and evbusd). False on failure (node_modules missing: run
 * scripts/install-deps.sh), with the server stopped.
 */
bool npm_server_start(moto *m, const char *impl, const char *log_path);

/*
 * Starts the implementation a test was built for: moto_server when `impl`
 * is "moto", else npm_server_start(). Lets one test source run against
 * each implementation (see EVBUS_TEST_IMPL in tests/integration).
 */
bool aws_server_start(moto *m, const char *impl, const char *log_path);

#endif
