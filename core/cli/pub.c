/* evbus pub: publish events from flags or from JSON Lines and print one ack
 * per event. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "common/util.h"
#include "curve_opts.h"
#include "evbus/evbus.h"

#define MAX_RESOURCES 100
#define MAX_ATTRS     64

typedef struct counts {
    unsigned long long sent, accepted, duplicate, rejected, retry_later, failed;
    bool quiet;
} counts;

/* One request's worth of input line numbers, for the ack lines. */
typedef struct batch {
    counts *k;
    const evbus_client_t *client;
    size_t n;
    unsigned long lines[];
} batch;

static void usage(FILE *out) {
    fprintf(
        out,
        "usage: evbus pub [OPTIONS]\n"
        "\n"
        "Publishes events and prints one line per event: its ack. With --source and\n"
        "--detail-type it publishes one event built from flags; otherwise it reads JSON\n"
        "Lines from --file (or stdin), one event per line, with the fields of an\n"
        "EventBridge event (id, source, detail-type, detail, time, resources) or of a\n"
        "PutEvents entry (Source, DetailType, Detail, Time, Resources), plus\n"
        "partition-key, attributes (an object of strings) and origin-region.\n"
        "\n"
        "  -e, --endpoint EP      router endpoint, or several separated by commas\n"
        "                         (default $EVBUS_ENDPOINT or tcp://127.0.0.1:5555)\n"
        "      --policy P         with several routers: failover (the first that\n"
        "                         answers, in order; the default) or spread (all\n"
        "                         of them in turn)\n"
        "  -s, --source S         event source\n"
        "  -t, --detail-type T    event detail type\n"
        "  -d, --detail JSON      event detail, a JSON object (default {})\n"
        "      --id ID            event id (default: a random UUID)\n"
        "      --time T           RFC 3339 time (default: when the router accepts it)\n"
        "  -r, --resource ARN     a resource; repeat for more\n"
        "  -k, --partition-key K  ordering key\n"
        "  -a, --attr KEY=VALUE   an attribute; repeat for more\n"
        "  -f, --file FILE        JSON Lines to publish ('-' for stdin)\n"
        "  -b, --batch N          events per request (default 100)\n"
        "  -j, --in-flight N      requests outstanding at once (default 16)\n"
        "      --timeout MS       give up on a request after this long (default 30000)\n"
        "  -q, --quiet            print only events that were not stored\n" EVBUS__CLI_CURVE_HELP
        "\n"
        "Exit status: 0 when every event is durable (accepted or duplicate), 1 when\n"
        "any was rejected, 3 when any must be sent again later or timed out, 2 on\n"
        "bad usage or input.\n");
}

static void on_ack(void *arg, evbus_err err, const evbus_ack *acks, size_t n) {
    batch *b = arg;
    counts *k = b->k;
    for (size_t i = 0; i < b->n; i++) {
        unsigned long line = b->lines[i];
        if (err != EVBUS_OK) {
            k->failed++;
            printf("failed line=%lu: %s%s%s\n", line, evbus_strerror(err),
                   err == EVBUS_EREMOTE ? ": " : "",
                   err == EVBUS_EREMOTE ? evbus_client_last_error(b->client) : "");
            continue;
        }
        const evbus_ack *a = i < n ? &acks[i] : NULL;
        if (!a)
            continue;
        switch (a->status) {
        case EVBUS_ACK_ACCEPTED: k->accepted++; break;
        case EVBUS_ACK_DUPLICATE: k->duplicate++; break;
        case EVBUS_ACK_REJECTED: k->rejected++; break;
        default: k->retry_later++; break;
        }
        bool durable = a->status == EVBUS_ACK_ACCEPTED || a->status == EVBUS_ACK_DUPLICATE;
        if (durable && k->quiet)
            continue;
        char where[32] = "";
        if (line) /* events from flags have no input line */
            snprintf(where, sizeof where, " line=%lu", line);
        /* With several routers, say which one holds the event. */
        char router[300] = "";
        if (evbus_client_router_count(b->client) > 1)
            snprintf(router, sizeof router, " router=%s", evbus_client_ack_router(b->client));
        if (durable)
            printf("%s seq=%llu id=%s%s region=%s%s\n", evbus_ack_status_name(a->status),
                   (unsigned long long)a->sequence, a->event_id, where, a->region, router);
        else
            printf("%s id=%s%s: %s\n", evbus_ack_status_name(a->status), a->event_id, where,
                   a->reason);
    }
    free(b);
}

/* An event read from one JSON line; strings point into `root` or `detail`. */
typedef struct parsed {
    json_t *root;
    char *detail; /* owned when the detail was an object */
    const char *resources[MAX_RESOURCES];
    evbus_attr attrs[MAX_ATTRS];
    evbus_event ev;
} parsed;

static const char *get_str(json_t *o, const char *a, const char *b) {
    json_t *v = json_object_get(o, a);
    if (!v && b)
        v = json_object_get(o, b);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Returns NULL and fills why when the line is not a usable event. */
static int parse_line(const char *line, size_t len, parsed *p, char *why, size_t whylen) {
    json_error_t jerr;
    memset(p, 0, sizeof *p);
    p->root = json_loadb(line, len, 0, &jerr);
    if (!p->root || !json_is_object(p->root)) {
        snprintf(why, whylen, "not a JSON object%s%s", p->root ? "" : ": ",
                 p->root ? "" : jerr.text);
        return -1;
    }
    json_t *o = p->root;
    evbus_event *e = &p->ev;
    e->id = get_str(o, "id", "Id");
    e->source = get_str(o, "source", "Source");
    e->detail_type = get_str(o, "detail-type", "DetailType");
    e->time = get_str(o, "time", "Time");
    e->partition_key = get_str(o, "partition-key", "PartitionKey");
    e->origin_region = get_str(o, "origin-region", "region");
    json_t *d = json_object_get(o, "detail");
    if (!d)
        d = json_object_get(o, "Detail");
    if (json_is_string(d)) {
        e->detail = json_string_value(d);
    } else if (d) {
        p->detail = json_dumps(d, JSON_COMPACT | JSON_ENCODE_ANY);
        e->detail = p->detail;
    }
    json_t *res = json_object_get(o, "resources");
    if (!res)
        res = json_object_get(o, "Resources");
    if (res) {
        if (!json_is_array(res) || json_array_size(res) > MAX_RESOURCES) {
            snprintf(why, whylen, "resources must be an array of at most %d strings",
                     MAX_RESOURCES);
            return -1;
        }
        for (size_t i = 0; i < json_array_size(res); i++) {
            const char *r = json_string_value(json_array_get(res, i));
            if (!r) {
                snprintf(why, whylen, "resources[%zu] is not a string", i);
                return -1;
            }
            p->resources[e->n_resources++] = r;
        }
        e->resources = p->resources;
    }
    json_t *attrs = json_object_get(o, "attributes");
    if (attrs) {
        const char *key;
        json_t *v;
        if (!json_is_object(attrs) || json_object_size(attrs) > MAX_ATTRS) {
            snprintf(why, whylen, "attributes must be an object of at most %d strings", MAX_ATTRS);
            return -1;
        }
        json_object_foreach(attrs, key, v) {
            if (!json_is_string(v)) {
                snprintf(why, whylen, "attributes.%s is not a string", key);
                return -1;
            }
            p->attrs[e->n_attributes].key = key;
            p->attrs[e->n_attributes++].value = json_string_value(v);
        }
        e->attributes = p->attrs;
    }
    return 0;
}

static void parsed_free(parsed *p) {
    free(p->detail);
    if (p->root)
        json_decref(p->root);
}

static void progress(counts *k, int64_t start_ms, int64_t *last_ms, bool final) {
    int64_t now = evbus__now_mono_ms();
    if (!final && now - *last_ms < 2000)
        return;
    *last_ms = now;
    double secs = (double)(now - start_ms) / 1000.0;
    unsigned long long acked = k->accepted + k->duplicate + k->rejected + k->retry_later;
    fprintf(stderr,
            "evbus pub: %llu sent, %llu acked (%llu accepted, %llu duplicate, %llu "
            "rejected, %llu retry later), %.0f events/s\n",
            k->sent, acked, k->accepted, k->duplicate, k->rejected, k->retry_later,
            secs > 0 ? (double)acked / secs : 0.0);
}

static int publish_batch(evbus_client_t *c, evbus_event *evs, unsigned long *lines, size_t n,
                         counts *k) {
    batch *b = malloc(sizeof *b + n * sizeof b->lines[0]);
    if (!b)
        return -1;
    b->k = k;
    b->client = c;
    b->n = n;
    memcpy(b->lines, lines, n * sizeof lines[0]);
    evbus_err rc = evbus_publish_async(c, evs, n, on_ack, b);
    if (rc) {
        fprintf(stderr, "evbus pub: cannot publish: %s\n", evbus_strerror(rc));
        free(b);
        k->failed += n;
        return -1;
    }
    k->sent += n;
    return 0;
}

/* Splits -e's comma-separated endpoints in place (spaces around each are
 * dropped). Returns 0, or -1 with why: an empty item ("a,,b"), the same
 * router twice (two connections to it would only double its load), or more
 * than EVBUS_ROUTERS_MAX. */
static int split_endpoints(char *list, const char **out, size_t *n, char *why, size_t whylen) {
    *n = 0;
    for (char *item = list;;) {
        char *comma = strchr(item, ',');
        if (comma)
            *comma = '\0';
        while (*item == ' ' || *item == '\t')
            item++;
        size_t len = strlen(item);
        while (len && (item[len - 1] == ' ' || item[len - 1] == '\t'))
            item[--len] = '\0';
        if (!len) {
            snprintf(why, whylen, "endpoint %zu of the list is empty", *n + 1);
            return -1;
        }
        for (size_t i = 0; i < *n; i++) {
            if (strcmp(out[i], item) == 0) {
                snprintf(why, whylen, "%s is listed twice", item);
                return -1;
            }
        }
        if (*n == EVBUS_ROUTERS_MAX) {
            snprintf(why, whylen, "more than %d endpoints", EVBUS_ROUTERS_MAX);
            return -1;
        }
        out[(*n)++] = item;
        if (!comma)
            return 0;
        item = comma + 1;
    }
}

int evbus__cmd_pub(int argc, char **argv) {
    static const struct option opts[] = {{"endpoint", required_argument, NULL, 'e'},
                                         {"source", required_argument, NULL, 's'},
                                         {"detail-type", required_argument, NULL, 't'},
                                         {"detail", required_argument, NULL, 'd'},
                                         {"id", required_argument, NULL, 'I'},
                                         {"time", required_argument, NULL, 'T'},
                                         {"resource", required_argument, NULL, 'r'},
                                         {"partition-key", required_argument, NULL, 'k'},
                                         {"attr", required_argument, NULL, 'a'},
                                         {"file", required_argument, NULL, 'f'},
                                         {"batch", required_argument, NULL, 'b'},
                                         {"in-flight", required_argument, NULL, 'j'},
                                         {"timeout", required_argument, NULL, 'O'},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"server-key", required_argument, NULL, 'K'},
                                         {"key", required_argument, NULL, 'Y'},
                                         {"policy", required_argument, NULL, 'P'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *endpoint = getenv("EVBUS_ENDPOINT");
    if (!endpoint || !*endpoint)
        endpoint = "tcp://127.0.0.1:5555";
    evbus_event one = {0};
    const char *resources[MAX_RESOURCES];
    evbus_attr attrs[MAX_ATTRS];
    const char *file = NULL, *server_key = NULL, *key_file = NULL;
    long batch_size = 100, in_flight = 16, timeout_ms = 30000;
    evbus_router_policy policy = EVBUS_ROUTER_FAILOVER;
    counts k = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "e:s:t:d:r:k:a:f:b:j:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'e': endpoint = optarg; break;
        case 's': one.source = optarg; break;
        case 't': one.detail_type = optarg; break;
        case 'd': one.detail = optarg; break;
        case 'I': one.id = optarg; break;
        case 'T': one.time = optarg; break;
        case 'k': one.partition_key = optarg; break;
        case 'r':
            if (one.n_resources == MAX_RESOURCES) {
                fprintf(stderr, "evbus pub: at most %d resources\n", MAX_RESOURCES);
                return 2;
            }
            resources[one.n_resources++] = optarg;
            one.resources = resources;
            break;
        case 'a': {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg || one.n_attributes == MAX_ATTRS) {
                fprintf(stderr, "evbus pub: --attr wants KEY=VALUE (at most %d)\n", MAX_ATTRS);
                return 2;
            }
            *eq = '\0';
            attrs[one.n_attributes].key = optarg;
            attrs[one.n_attributes++].value = eq + 1;
            one.attributes = attrs;
            break;
        }
        case 'f': file = optarg; break;
        case 'b': batch_size = strtol(optarg, NULL, 10); break;
        case 'j': in_flight = strtol(optarg, NULL, 10); break;
        case 'O': timeout_ms = strtol(optarg, NULL, 10); break;
        case 'q': k.quiet = true; break;
        case 'K': server_key = optarg; break;
        case 'Y': key_file = optarg; break;
        case 'P':
            if (evbus_router_policy_parse(optarg, &policy) != EVBUS_OK) {
                fprintf(stderr, "evbus pub: --policy must be failover or spread, not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (batch_size < 1 || batch_size > 10000 || in_flight < 1 || in_flight > 4096 ||
        timeout_ms < 1) {
        fprintf(stderr,
                "evbus pub: --batch must be 1..10000, --in-flight 1..4096, --timeout > 0\n");
        return 2;
    }
    bool from_flags = one.source || one.detail_type;
    if (from_flags && file) {
        fprintf(stderr, "evbus pub: give either event flags or --file, not both\n");
        return 2;
    }
    if (from_flags && (!one.source || !one.detail_type)) {
        fprintf(stderr, "evbus pub: --source and --detail-type are both required\n");
        return 2;
    }
    if (!from_flags && !file) {
        if (isatty(STDIN_FILENO)) {
            usage(stderr);
            return 2;
        }
        file = "-";
    }

    evbus__cli_curve curve;
    if (evbus__cli_curve_load("pub", server_key, key_file, &curve))
        return 2;
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    if (curve.on) {
        o.curve_server_key = curve.server;
        o.curve_public_key = curve.pub;
        o.curve_secret_key = curve.sec;
    }
    o.max_in_flight = (unsigned)in_flight;
    o.timeout_ms = (int)timeout_ms;
    o.policy = policy;
    char *endpoint_list = strdup(endpoint);
    const char *routers[EVBUS_ROUTERS_MAX];
    size_t n_routers = 0;
    char ep_why[256];
    if (!endpoint_list ||
        split_endpoints(endpoint_list, routers, &n_routers, ep_why, sizeof ep_why)) {
        fprintf(stderr, "evbus pub: -e '%s': %s\n", endpoint,
                endpoint_list ? ep_why : "out of memory");
        free(endpoint_list);
        return 2;
    }
    o.endpoints = routers;
    o.n_endpoints = n_routers;
    evbus_client_t *client;
    evbus_err rc = evbus_client_new(NULL, &o, &client);
    free(endpoint_list); /* the client copied the endpoints */
    explicit_bzero(curve.sec, sizeof curve.sec);
    if (rc) {
        fprintf(stderr, "evbus pub: cannot open %s: %s\n", endpoint, evbus_strerror(rc));
        return 2;
    }
    int status = 0;
    if (from_flags) {
        if (!one.detail)
            one.detail = "{}";
        unsigned long line = 0;
        publish_batch(client, &one, &line, 1, &k);
    } else {
        FILE *in = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
        if (!in) {
            fprintf(stderr, "evbus pub: %s: %s\n", file, strerror(errno));
            evbus_client_destroy(&client);
            return 2;
        }
        parsed *ps = calloc((size_t)batch_size, sizeof *ps);
        evbus_event *evs = calloc((size_t)batch_size, sizeof *evs);
        unsigned long *lines = calloc((size_t)batch_size, sizeof *lines);
        char *buf = NULL;
        size_t cap = 0, n = 0;
        ssize_t len;
        unsigned long lineno = 0;
        int64_t start = evbus__now_mono_ms(), last = start;
        while (ps && evs && lines && (len = getline(&buf, &cap, in)) >= 0) {
            lineno++;
            while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
                len--;
            if (len == 0)
                continue;
            char why[256];
            if (parse_line(buf, (size_t)len, &ps[n], why, sizeof why)) {
                fprintf(stderr, "evbus pub: %s:%lu: %s\n", file, lineno, why);
                parsed_free(&ps[n]);
                status = 2;
                continue;
            }
            evs[n] = ps[n].ev;
            lines[n++] = lineno;
            if (n == (size_t)batch_size) {
                publish_batch(client, evs, lines, n, &k);
                for (size_t i = 0; i < n; i++)
                    parsed_free(&ps[i]);
                n = 0;
                evbus_client_poll(client, 0);
                progress(&k, start, &last, false);
            }
        }
        if (n > 0)
            publish_batch(client, evs, lines, n, &k);
        for (size_t i = 0; i < n; i++)
            parsed_free(&ps[i]);
        free(buf);
        free(ps);
        free(evs);
        free(lines);
        if (in != stdin)
            fclose(in);
        evbus_client_flush(client, -1);
        if (evbus__now_mono_ms() - start >= 2000)
            progress(&k, start, &last, true);
    }
    evbus_client_flush(client, -1);
    evbus_client_destroy(&client);
    fflush(stdout);
    if (k.rejected)
        return 1;
    if (k.retry_later || k.failed)
        return 3;
    return status;
}
