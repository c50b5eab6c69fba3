/* evbus keygen PATH: a CURVE key pair for evbusd, a producer or an operator. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "common/curve_keys.h"

static void usage(FILE *out) {
    fprintf(out, "usage: evbus keygen PATH\n"
                 "\n"
                 "Writes a new CURVE key pair: PATH.pub (one line, the public key: hand it out)\n"
                 "and PATH.key (mode 0600: the public key line, then the secret key line: keep\n"
                 "it). An existing file is never overwritten.\n"
                 "\n"
                 "  evbusd:    ingest.curve.secret_key: PATH.key (producers get PATH.pub)\n"
                 "  producer:  evbus pub --server-key SERVER.pub --key PATH.key; evbusd's\n"
                 "             ingest.curve.authorized_keys gets a line NAME <PATH.pub's key>\n"
                 "             [SOURCE-OR-PREFIX* ...]\n"
                 "  operator:  control.curve.operator_keys gets a line NAME <PATH.pub's key>\n");
}

int evbus__cmd_keygen(int argc, char **argv) {
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc != 2 || argv[1][0] == '-' || argv[1][0] == '\0') {
        usage(stderr);
        return 2;
    }
    char pub[41], err[1024];
    if (evbus__curve_keygen(argv[1], pub, err, sizeof err) != EVBUS_OK) {
        fprintf(stderr, "evbus keygen: %s\n", err);
        return 1;
    }
    printf("wrote %s.pub (public: hand it out) and %s.key (secret, mode 0600: keep it)\n"
           "public key: %s\n",
           argv[1], argv[1], pub);
    return 0;
}
