/* evbus plugin info NAME|PATH: what a plugin is and the keys it takes, read
 * from its descriptor (the same checks evbusd makes when it loads it). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "daemon/plugin_find.h"
#include "daemon/plugin_load.h"

static const char *type_name(evbus_config_type t) {
    switch (t) {
    case EVBUS_CONFIG_STRING: return "string";
    case EVBUS_CONFIG_INT: return "int";
    case EVBUS_CONFIG_BOOL: return "bool";
    case EVBUS_CONFIG_SIZE: return "size";
    case EVBUS_CONFIG_DURATION: return "duration";
    }
    return "?";
}

static void print_info(const evbus__plugin_lib *lib) {
    const evbus_plugin *d = lib->desc;
    printf("name:        %s\n", d->name);
    printf("version:     %s\n", d->version ? d->version : "");
    printf("ABI:         %u.%u (this evbus: %d.%d)\n", d->abi_major, d->abi_minor,
           EVBUS_PLUGIN_ABI_MAJOR, EVBUS_PLUGIN_ABI_MINOR);
    printf("description: %s\n", d->description ? d->description : "");
    printf("path:        %s\n", lib->path);
    if (d->kind == EVBUS_PLUGIN_SELECTOR) {
        printf("kind:        region selector\n");
        return;
    }
    printf("limits:      %u events per batch, ", d->max_batch_events);
    if (d->max_batch_bytes)
        printf("%u bytes of envelopes per batch\n", d->max_batch_bytes);
    else
        printf("no byte limit\n");
    printf("keys:\n");
    if (!d->config_keys || !d->config_keys->name) {
        printf("  (none)\n");
        return;
    }
    printf("  %-20s %-9s %-15s %s\n", "KEY", "TYPE", "DEFAULT", "HELP");
    for (const evbus_config_key *k = d->config_keys; k->name; k++)
        printf("  %-20s %-9s %-15s %s\n", k->name, type_name(k->type),
               k->required        ? "(required)"
               : k->default_value ? k->default_value
                                  : "(none)",
               k->help ? k->help : "");
}

static void usage(FILE *out) {
    fprintf(out, "usage: evbus plugin info [--plugin-dir DIR] NAME|PATH\n"
                 "\n"
                 "Prints a plugin's name, version, ABI version, batch limits and the\n"
                 "configuration keys it takes (type, default, help). NAME (e.g. sqs) is\n"
                 "looked up in --plugin-dir, then lib/evbus/plugins of this installation.\n");
}

int evbus__cmd_plugin(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "info") != 0) {
        usage(argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) ? stdout
                                                                                          : stderr);
        return argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) ? 0 : 2;
    }
    static const struct option opts[] = {{"plugin-dir", required_argument, NULL, 'd'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *dir = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc - 1, argv + 1, "d:h", opts, NULL)) != -1) {
        if (c == 'd') {
            dir = optarg;
        } else {
            usage(c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    if (optind != argc - 2) {
        usage(stderr);
        return 2;
    }
    const char *what = argv[1 + optind];
    char err[2048], *path = NULL;
    if (evbus__plugin_is_short_name(what)) {
        char err2[sizeof err];
        if (evbus__plugin_find(what, dir, &path, err, sizeof err) != EVBUS_OK &&
            evbus__plugin_find_kind(what, "evbus_selector_", dir, &path, err2, sizeof err2) !=
                EVBUS_OK) {
            fprintf(stderr, "evbus plugin info: %s\n", err);
            return 1;
        }
    } else if (!(path = strdup(what))) {
        return 1;
    }
    evbus__plugin_lib *lib = NULL;
    if (evbus__plugin_open(path, &lib, err, sizeof err) != EVBUS_OK) {
        fprintf(stderr, "evbus plugin info: %s\n", err);
        free(path);
        return 1;
    }
    free(path);
    print_info(lib);
    evbus__plugin_close(&lib);
    return 0;
}
