/* Internal to plugins/aws: the credential sources. */
#ifndef EVBUS_AWS_CREDS_INT_H
#define EVBUS_AWS_CREDS_INT_H

#include <sys/types.h>

#include "aws.h"

/* 1 and fills out when AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are set
 * (AWS_SESSION_TOKEN too, if set); else 0. */
int aws_creds_from_env(evbus_aws_creds *out);

/* Looks `profile` up in the shared credentials file, then the config file.
 * Returns 1 and fills out when it has a key id and secret, -1 when the
 * profile exists without them, 0 when no file has it. `files` gets the
 * paths read, for messages; `from` (if not NULL) the path of the file the
 * keys came from. */
int aws_creds_from_files(const char *profile, evbus_aws_creds *out, char *files, size_t fileslen,
                         char *from, size_t fromlen);

/* What tells one version of the two shared files from another: for each,
 * whether it exists, its device, inode, size, modification and change
 * times. Taken before a read, a later stamp that differs means the files
 * may hold other keys. Compare with aws_files_stamp_equal(). */
typedef struct aws_file_stamp {
    int exists;
    dev_t dev;
    ino_t ino;
    off_t size;
    int64_t mtime_ns, ctime_ns;
} aws_file_stamp;

typedef struct aws_files_stamp {
    aws_file_stamp credentials, config;
} aws_files_stamp;

/* Stats the shared credentials and config files (two stat calls, no read). */
void aws_files_stamp_take(aws_files_stamp *out);

/* 1 when a and b describe the same versions of both files. */
int aws_files_stamp_equal(const aws_files_stamp *a, const aws_files_stamp *b);

/* Frees the strings (wiping the secret) and zeroes *c. */
void aws_creds_clear(evbus_aws_creds *c);

/* Parses an RFC 3339 UTC time ("2026-12-02T07:01:03Z", fractions and
 * +00:00 allowed) into ms since the epoch; -1 when malformed. */
int64_t aws_parse_time_ms(const char *s);

#endif
