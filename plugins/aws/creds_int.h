/* Internal to plugins/aws: the credential sources. */
#ifndef EVBUS_AWS_CREDS_INT_H
#define EVBUS_AWS_CREDS_INT_H

#include "aws.h"

/* 1 and fills out when AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are set
 * (AWS_SESSION_TOKEN too, if set); else 0. */
int aws_creds_from_env(evbus_aws_creds *out);

/* Looks `profile` up in the shared credentials file, then the config file.
 * Returns 1 and fills out when it has a key id and secret, -1 when the
 * profile exists without them, 0 when no file has it. `files` gets the
 * paths read, for messages. */
int aws_creds_from_files(const char *profile, evbus_aws_creds *out, char *files, size_t fileslen);

/* Frees the strings (wiping the secret) and zeroes *c. */
void aws_creds_clear(evbus_aws_creds *c);

/* Parses an RFC 3339 UTC time ("2026-12-02T07:01:03Z", fractions and
 * +00:00 allowed) into ms since the epoch; -1 when malformed. */
int64_t aws_parse_time_ms(const char *s);

#endif
