/* evbus: the command-line tool for producers and operators. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "match/match.h"

static void usage(FILE *out) {
    fprintf(out, "usage: evbus COMMAND [ARGS]\n"
                 "\n"
                 "commands:\n"
                 "  pub            publish events (from flags, or JSON Lines on stdin or a file)\n"
                 "  test-pattern   check an EventBridge event pattern against an event\n"
                 "  status         what evbusd is doing: ingest, store, and per target pending,\n"
                 "                 in flight, delivered, retried, dead-lettered, oldest age\n"
                 "  dlq list       dead letters: events a target could not take, and why\n"
                 "  dlq replay     deliver a target's dead letters again; dlq drop: delete them\n"
                 "  replay         deliver stored events since a time to a target again\n"
                 "  region         region health, routing controls (on|off) and application\n"
                 "                 states (fence|unfence|failover|failback)\n"
                 "  plugin info    a plugin's name, version, ABI, limits and configuration keys\n"
                 "  keygen PATH    write a CURVE key pair: PATH.pub and PATH.key (mode 0600)\n"
                 "  version        print the version\n"
                 "\n"
                 "Run 'evbus COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "pub") == 0)
        return evbus__cmd_pub(argc - 1, argv + 1);
    if (strcmp(cmd, "status") == 0)
        return evbus__cmd_status(argc - 1, argv + 1);
    if (strcmp(cmd, "dlq") == 0)
        return evbus__cmd_dlq(argc - 1, argv + 1);
    if (strcmp(cmd, "replay") == 0)
        return evbus__cmd_replay(argc - 1, argv + 1);
    if (strcmp(cmd, "region") == 0)
        return evbus__cmd_region(argc - 1, argv + 1);
    if (strcmp(cmd, "plugin") == 0)
        return evbus__cmd_plugin(argc - 1, argv + 1);
    if (strcmp(cmd, "keygen") == 0)
        return evbus__cmd_keygen(argc - 1, argv + 1);
    if (strcmp(cmd, "test-pattern") == 0)
        return evbus__cmd_test_pattern(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("evbus %s\n", EVBUS_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "evbus: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
