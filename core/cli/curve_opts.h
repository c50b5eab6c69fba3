/* The CURVE options of the commands that connect to evbusd: --server-key
 * (or $EVBUS_SERVER_KEY) and --key (or $EVBUS_KEY). */
#ifndef EVBUS_CLI_CURVE_OPTS_H
#define EVBUS_CLI_CURVE_OPTS_H

#include <stdbool.h>

typedef struct evbus__cli_curve {
    bool on;
    char server[41], pub[41], sec[41];
} evbus__cli_curve;

/* Resolves the two options (NULL: from the environment) and reads the keys.
 * Neither given: out->on is false. Returns 0, or 2 after printing why (one
 * without the other, an unreadable or malformed key file). */
int evbus__cli_curve_load(const char *cmd, const char *server_key, const char *key_file,
                          evbus__cli_curve *out);

/* Sets the client side of CURVE on a ZeroMQ socket. Returns 0 or -1. */
int evbus__cli_curve_apply(const evbus__cli_curve *c, void *sock);

#define EVBUS__CLI_CURVE_HELP                                                                      \
    "      --server-key KEY   evbusd's public key (40 Z85 characters, or its PATH.pub;\n"          \
    "                         or $EVBUS_SERVER_KEY): connect with CURVE\n"                         \
    "      --key FILE         this client's PATH.key from `evbus keygen` (or $EVBUS_KEY)\n"

#endif
