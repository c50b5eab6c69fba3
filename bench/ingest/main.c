/* evbus-bench-ingest: durable acked events per second and ack latency of
 * evbusd, side by side with Redis streams (XADD, appendfsync always) driven
 * with the same events, producers and pipelining. Every run starts its own
 * server on loopback with a fresh data directory and stops it afterwards. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "args.h"
#include "bench.h"
#include "evbus/evbus.h"
#include "host.h"
#include "open_loop.h"
#include "proc.h"

#define MAX_WRAP  32
#define MAX_RUNS  99
#define MAX_EVENT (256 * 1024)

const char *bench_name = "bench-ingest";

typedef struct options {
    unsigned runs;
    double duration_s, warmup_s;
    bench_list sizes, batches, producers;
    bench_list open_loop; /* percentages of a cell's maximum; empty: closed loop only */
    unsigned window;
    const char *evbusd;
    char evbusd_found[PATH_MAX];
    char *wrap[MAX_WRAP];
    size_t n_wrap;
    char wrap_buf[1024];
    int ipc;
    const char *redis;
    int no_redis;
    const char *tmpdir;
    int keep, verbose;
    int curve;
    int http;    /* the compared side is evbusd's HTTP ingest, not Redis */
    int routers; /* --routers: the multi-router mode (routers.c) */
    unsigned kills;
    int resend_ms;
    bench_curve keys;       /* the producers' side */
    char server_secret[41]; /* evbusd's secret, written into each run's directory */
} options;

/* A server of one run: where it lives and whether it still runs. */
typedef struct server {
    const char *name;
    char dir[PATH_MAX - 64];
    char log[PATH_MAX];
    pid_t pid;  /* 0 once reaped */
    int status; /* wait status once reaped */
} server;

/* snprintf for messages: a message cut short is acceptable, and going through
 * vsnprintf keeps that choice in one place. */
__attribute__((format(printf, 3, 4))) static void say(char *buf, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: evbus-bench-ingest [options]\n"
            "\n"
            "Measures durable acked events/s and ack latency of evbusd, and of Redis streams\n"
            "(XADD, appendonly yes, appendfsync always) under the same load. Each run starts\n"
            "its own server on loopback with a fresh data directory.\n"
            "\n"
            "  --runs N           runs per cell; each figure is the median (default 3)\n"
            "  --duration S       measured seconds per run (default 3)\n"
            "  --warmup S         seconds of load before measuring (default 0.5)\n"
            "  --quick            smoke run: 1 run of 0.5 s, 256 B, batch 10, 1 and 4 producers\n"
            "  --sizes LIST       event sizes, e.g. 256,1KiB (default 256,1KiB)\n"
            "  --batches LIST     events per request (default 1,10,100)\n"
            "  --producers LIST   producer threads, each with its own client (default 1,4)\n"
            "  --window N         requests in flight per producer (default 64)\n"
            "  --open-loop LIST   after each cell, send on a fixed schedule at these\n"
            "                     percentages of its maximum (e.g. 10,50,80) and time each\n"
            "                     ack from the request's scheduled send time\n"
            "  --evbusd PATH      the daemon (default: core/evbusd of this build tree,\n"
            "                     or $EVBUS_BIN_DIR/evbusd)\n"
            "  --evbusd-wrap CMD  run evbusd under CMD, split at spaces\n"
            "                     (e.g. \"valgrind --tool=callgrind\")\n"
            "  --ipc              evbusd listens on ipc:// instead of tcp://127.0.0.1\n"
            "  --curve            producers authenticate with CURVE (ingest.curve): what\n"
            "                     authentication and encryption cost\n"
            "  --redis-server P   the Redis server (default: redis-server in PATH)\n"
            "  --no-redis         skip the Redis comparison\n"
            "  --http             compare with evbusd's EventBridge PutEvents HTTP ingest\n"
            "                     instead of Redis: --window kept-alive connections per\n"
            "                     producer, one request (at most 10 entries) on each\n"
            "  --routers          instead: events/s over one evbusd and spread over two, then\n"
            "                     the resume time of a failover producer whose evbusd is\n"
            "                     killed (first size and batch only; see README.md)\n"
            "  --kills N          --routers: kill -9 and restart N times (default 10)\n"
            "  --resend-ms N      --routers: the failover producer's resend_ms (default 2000)\n"
            "  --tmpdir DIR       where run directories go (default: $TMPDIR or /tmp); put it\n"
            "                     on the disk you want to measure, not on tmpfs\n"
            "  --keep             keep run directories and server logs\n"
            "  -v, --verbose      one line per run, with server pids (for perf -p)\n"
            "  -h, --help         this text\n");
}

/* 1 when `name` (a path, or a program searched in PATH) can be run. */
static int runnable(const char *name) {
    if (strchr(name, '/'))
        return access(name, X_OK) == 0;
    const char *path = getenv("PATH");
    char dir[PATH_MAX];
    while (path && *path) {
        size_t len = strcspn(path, ":");
        int n = snprintf(dir, sizeof dir, "%.*s/%s", (int)len, path, name);
        if (n > 0 && (size_t)n < sizeof dir && access(dir, X_OK) == 0)
            return 1;
        path += len + (path[len] == ':');
    }
    return 0;
}

static int parse_options(int argc, char **argv, options *o) {
    enum {
        O_RUNS = 256,
        O_DUR,
        O_WARM,
        O_OPEN,
        O_QUICK,
        O_SIZES,
        O_BATCHES,
        O_PROD,
        O_WINDOW,
        O_EVBUSD,
        O_WRAP,
        O_IPC,
        O_REDIS,
        O_NOREDIS,
        O_TMP,
        O_KEEP,
        O_CURVE,
        O_HTTP,
        O_ROUTERS,
        O_KILLS,
        O_RESEND
    };
    static const struct option lo[] = {{"runs", required_argument, NULL, O_RUNS},
                                       {"duration", required_argument, NULL, O_DUR},
                                       {"warmup", required_argument, NULL, O_WARM},
                                       {"quick", no_argument, NULL, O_QUICK},
                                       {"sizes", required_argument, NULL, O_SIZES},
                                       {"batches", required_argument, NULL, O_BATCHES},
                                       {"producers", required_argument, NULL, O_PROD},
                                       {"window", required_argument, NULL, O_WINDOW},
                                       {"open-loop", required_argument, NULL, O_OPEN},
                                       {"evbusd", required_argument, NULL, O_EVBUSD},
                                       {"evbusd-wrap", required_argument, NULL, O_WRAP},
                                       {"ipc", no_argument, NULL, O_IPC},
                                       {"redis-server", required_argument, NULL, O_REDIS},
                                       {"no-redis", no_argument, NULL, O_NOREDIS},
                                       {"tmpdir", required_argument, NULL, O_TMP},
                                       {"keep", no_argument, NULL, O_KEEP},
                                       {"curve", no_argument, NULL, O_CURVE},
                                       {"http", no_argument, NULL, O_HTTP},
                                       {"routers", no_argument, NULL, O_ROUTERS},
                                       {"kills", required_argument, NULL, O_KILLS},
                                       {"resend-ms", required_argument, NULL, O_RESEND},
                                       {"verbose", no_argument, NULL, 'v'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    int quick = 0, have_runs = 0, have_dur = 0, have_warm = 0, c;
    int have_sizes = 0, have_batches = 0, have_prod = 0;
    o->runs = 3;
    o->duration_s = 3;
    o->warmup_s = 0.5;
    o->window = 64;
    o->redis = "redis-server";
    o->tmpdir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    while ((c = getopt_long(argc, argv, "vh", lo, NULL)) != -1) {
        size_t v;
        switch (c) {
        case O_RUNS:
            if (bench_parse_size(optarg, &v) || v < 1 || v > MAX_RUNS)
                goto bad;
            o->runs = (unsigned)v;
            have_runs = 1;
            break;
        case O_DUR:
            if (bench_parse_seconds(optarg, &o->duration_s))
                goto bad;
            have_dur = 1;
            break;
        case O_WARM:
            if (bench_parse_seconds(optarg, &o->warmup_s))
                goto bad;
            have_warm = 1;
            break;
        case O_QUICK: quick = 1; break;
        case O_OPEN:
            if (bench_parse_list(optarg, &o->open_loop, 1, 100, 0))
                goto bad;
            break;
        case O_SIZES:
            if (bench_parse_list(optarg, &o->sizes, BENCH_MIN_EVENT_SIZE, MAX_EVENT, 1))
                goto bad;
            have_sizes = 1;
            break;
        case O_BATCHES:
            if (bench_parse_list(optarg, &o->batches, 1, 10000, 0))
                goto bad;
            have_batches = 1;
            break;
        case O_PROD:
            if (bench_parse_list(optarg, &o->producers, 1, 64, 0))
                goto bad;
            have_prod = 1;
            break;
        case O_WINDOW:
            if (bench_parse_size(optarg, &v) || v < 1 || v > 65536)
                goto bad;
            o->window = (unsigned)v;
            break;
        case O_EVBUSD: o->evbusd = optarg; break;
        case O_WRAP: {
            snprintf(o->wrap_buf, sizeof o->wrap_buf, "%s", optarg);
            o->n_wrap = 0;
            for (char *save = NULL, *tok = strtok_r(o->wrap_buf, " ", &save);
                 tok && o->n_wrap < MAX_WRAP - 1; tok = strtok_r(NULL, " ", &save))
                o->wrap[o->n_wrap++] = tok;
            break;
        }
        case O_IPC: o->ipc = 1; break;
        case O_REDIS: o->redis = optarg; break;
        case O_NOREDIS: o->no_redis = 1; break;
        case O_HTTP: o->http = 1; break;
        case O_ROUTERS: o->routers = 1; break;
        case O_KILLS:
            if (bench_parse_size(optarg, &v) || v < 1 || v > BENCH_ROUTERS_MAX_KILLS)
                goto bad;
            o->kills = (unsigned)v;
            break;
        case O_RESEND:
            if (bench_parse_size(optarg, &v) || v < 1 || v > 600000)
                goto bad;
            o->resend_ms = (int)v;
            break;
        case O_TMP: o->tmpdir = optarg; break;
        case O_KEEP: o->keep = 1; break;
        case O_CURVE: o->curve = 1; break;
        case 'v': o->verbose = 1; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "evbus-bench-ingest: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (quick) {
        o->runs = have_runs ? o->runs : 1;
        o->duration_s = have_dur ? o->duration_s : 0.5;
        o->warmup_s = have_warm ? o->warmup_s : 0.2;
    }
    if (!have_sizes)
        o->sizes = quick ? (bench_list){{256}, 1} : (bench_list){{256, 1024}, 2};
    if (!have_batches)
        o->batches = quick || o->routers ? (bench_list){{10}, 1} : (bench_list){{1, 10, 100}, 3};
    if (!have_prod)
        o->producers = quick && o->routers ? (bench_list){{2}, 1} : (bench_list){{1, 4}, 2};
    if (!o->kills)
        o->kills = quick ? 2 : 10;
    if (!o->resend_ms)
        o->resend_ms = 2000;
    if (o->routers) /* no Redis, no HTTP: evbus against itself */
        o->no_redis = 1;
    if (!o->evbusd) {
        if (bench_find_evbusd(o->evbusd_found, sizeof o->evbusd_found)) {
            fprintf(stderr, "evbus-bench-ingest: cannot find evbusd next to this program; "
                            "build the evbusd target or give --evbusd PATH\n");
            return -1;
        }
        o->evbusd = o->evbusd_found;
    }
    if (o->curve) {
        /* One pair each for the whole benchmark: what is measured is the
         * per-connection and per-message cost, not key generation. */
        char pub[41];
        if (!zmq_has("curve") || zmq_curve_keypair(pub, o->server_secret) != 0 ||
            zmq_curve_keypair(o->keys.pub, o->keys.sec) != 0) {
            fprintf(stderr, "evbus-bench-ingest: --curve: this libzmq has no CURVE\n");
            return -1;
        }
        memcpy(o->keys.server, pub, sizeof pub);
    }
    if (!o->no_redis && !o->http && !runnable(o->redis)) {
        /* The comparison is optional; evbus's own figures still mean
         * something without it. */
        fprintf(stderr,
                "evbus-bench-ingest: %s not found; skipping the Redis comparison "
                "(scripts/install-deps.sh installs redis-server)\n",
                o->redis);
        o->no_redis = 1;
    }
    return 0;
bad:
    fprintf(stderr, "evbus-bench-ingest: invalid value '%s' for --%s (see --help)\n", optarg,
            lo[c - O_RUNS].name);
    return -1;
}

/* evbusd's key file and the producers' authorized keys, for --curve. */
static int write_curve_files(const options *o, const char *dir, char *err, size_t errlen) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/server.key", dir);
    FILE *f = fopen(path, "w");
    if (!f || fchmod(fileno(f), 0600) != 0 ||
        fprintf(f, "%s\n%s\n", o->keys.server, o->server_secret) < 0 || fclose(f) != 0) {
        say(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof path, "%s/producers.keys", dir);
    f = fopen(path, "w");
    if (!f || fprintf(f, "bench %s\n", o->keys.pub) < 0 || fclose(f) != 0) {
        say(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Reaps the server if it has exited; 1 while it runs. */
static int server_alive(server *s) {
    if (s->pid && !bench_alive(s->pid, &s->status))
        s->pid = 0;
    return s->pid != 0;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int start_evbusd(const options *o, server *s, char *endpoint, size_t eplen, int http_port,
                        char *err, size_t errlen) {
    char cfg[PATH_MAX];
    snprintf(cfg, sizeof cfg, "%s/evbus.yaml", s->dir);
    if (o->ipc) {
        snprintf(endpoint, eplen, "ipc://%s/ingest.sock", s->dir);
    } else {
        int port = bench_free_port();
        if (port < 0) {
            say(err, errlen, "no free loopback port: %s", strerror(errno));
            return -1;
        }
        snprintf(endpoint, eplen, "tcp://127.0.0.1:%d", port);
    }
    /* The HTTP ingest, unsigned on loopback: signing is the producers' cost. */
    char http[256] = "";
    if (http_port)
        snprintf(http, sizeof http,
                 "  http:\n    listen: 127.0.0.1:%d\n    allow_unsigned: true\n"
                 "    max_connections: 4096\n    max_connections_per_ip: 4096\n",
                 http_port);
    FILE *f = fopen(cfg, "w");
    if (!f) {
        say(err, errlen, "%s: cannot write: %s", cfg, strerror(errno));
        return -1;
    }
    /* Defaults everywhere but the map, which must not fill during a run. */
    fprintf(f,
            "region: bench\n"
            "log_level: info\n"
            "ingest:\n"
            "  listen:\n"
            "    - %s\n"
            "%s"
            "%s"
            "storage:\n"
            "  data_dir: data\n"
            "  map_size: 8GiB\n",
            endpoint,
            o->curve ? "  curve:\n    secret_key: server.key\n    authorized_keys: producers.keys\n"
                     : "",
            http);

    if (fclose(f) != 0) {
        say(err, errlen, "%s: cannot write: %s", cfg, strerror(errno));
        return -1;
    }
    if (o->curve && write_curve_files(o, s->dir, err, errlen))
        return -1;
    char *argv[MAX_WRAP + 4];
    size_t n = 0;
    for (size_t i = 0; i < o->n_wrap; i++)
        argv[n++] = o->wrap[i];
    argv[n++] = (char *)o->evbusd;
    argv[n++] = "--config";
    argv[n++] = cfg;
    argv[n] = NULL;
    if (bench_spawn(argv, s->log, &s->pid, err, errlen))
        return -1;

    /* Ready means one event made it into the store and back. Generous:
     * under valgrind start-up takes seconds. */
    return bench_evbusd_wait_ready_curve(endpoint, BENCH_SOURCE, o->curve ? &o->keys : NULL,
                                         &s->pid, &s->status, o->n_wrap ? 60000 : 15000, err,
                                         errlen);
}

static int start_redis(const options *o, server *s, int *port, char *err, size_t errlen) {
    char port_s[16];
    *port = bench_free_port();
    if (*port < 0) {
        say(err, errlen, "no free loopback port: %s", strerror(errno));
        return -1;
    }
    snprintf(port_s, sizeof port_s, "%d", *port);
    /* Durable like evbusd: every reply after its write is fsynced. Snapshots
     * and automatic AOF rewrites are off: they would fork in the middle of a
     * short run, so turning them off gives Redis its best figure. */
    char *argv[] = {(char *)o->redis,
                    "--port",
                    port_s,
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    s->dir,
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                    "--save",
                    "",
                    "--auto-aof-rewrite-percentage",
                    "0",
                    "--daemonize",
                    "no",
                    "--protected-mode",
                    "yes",
                    "--logfile",
                    "",
                    NULL};
    if (bench_spawn(argv, s->log, &s->pid, err, errlen))
        return -1;
    uint64_t deadline = bench_now_ns() + 15ull * 1000000000u;
    while (!bench_interrupted) {
        if (!server_alive(s)) {
            say(err, errlen, "%s exited during start-up", o->redis);
            return -1;
        }
        if (bench_redis_ping(*port) == 0)
            return 0;
        if (bench_now_ns() > deadline) {
            say(err, errlen, "%s did not answer PING within 15 s", o->redis);
            return -1;
        }
        sleep_ms(20);
    }
    say(err, errlen, "interrupted");
    return -1;
}

/* One run against one freshly started server. */
static int run_one(const options *o, int peer, bench_load *ld, bench_result *res);

/* What run_open needs: the options and the cell's load. */
typedef struct open_ctx {
    const options *o;
    bench_load base;
    uint64_t *not_stored;
} open_ctx;

/* run_one at a fixed rate, for open_loop_cell. */
static int run_open(void *arg, int peer, double rate, uint32_t nonce, open_loop_figures *out) {
    open_ctx *x = arg;
    bench_load ld = x->base;
    ld.rate = rate;
    ld.nonce = nonce;
    bench_result res;
    int rc = run_one(x->o, peer, &ld, &res);
    *x->not_stored += res.not_stored;
    out->per_s = res.events_per_s;
    out->p50_ms = res.p50_ms;
    out->p99_ms = res.p99_ms;
    out->p999_ms = res.p999_ms;
    snprintf(out->error, sizeof out->error, "%s", res.error);
    return rc;
}

static int run_one(const options *o, int peer, bench_load *ld, bench_result *res) {
    /* The compared side: Redis, or evbusd's HTTP ingest with --http. */
    int redis = peer && !o->http, http = peer && o->http;
    server s = {.name = redis ? "redis-server" : http ? "evbusd (HTTP)" : "evbusd"};
    char endpoint[PATH_MAX + 16], err[512] = "";
    int rc = -1;
    memset(res, 0, sizeof *res);
    if (bench_tmpdir_new(o->tmpdir, redis ? "redis" : "evbus", s.dir, sizeof s.dir)) {
        say(res->error, sizeof res->error, "cannot create a directory in %s: %s", o->tmpdir,
            strerror(errno));
        goto out;
    }
    snprintf(s.log, sizeof s.log, "%s/server.log", s.dir);
    if (http && (ld->port = bench_free_port()) < 0) {
        say(res->error, sizeof res->error, "no free loopback port: %s", strerror(errno));
        goto out;
    }
    int started = redis ? start_redis(o, &s, &ld->port, err, sizeof err)
                        : start_evbusd(o, &s, endpoint, sizeof endpoint, http ? ld->port : 0, err,
                                       sizeof err);
    if (started) {
        say(res->error, sizeof res->error, "%s: %s", s.name, err);
        goto out;
    }
    ld->endpoint = endpoint;
    if (o->verbose)
        fprintf(stderr, "bench-ingest: %s pid %ld in %s\n", s.name, (long)s.pid, s.dir);
    double cpu0 = bench_cpu_s(s.pid);
    rc = bench_load_run(ld,
                        redis  ? bench_redis_producer
                        : http ? bench_http_producer
                               : bench_evbus_producer,
                        res);
    if (server_alive(&s)) {
        res->rss_mib = bench_vmhwm_mib(s.pid);
        double cpu1 = bench_cpu_s(s.pid);
        if (cpu0 >= 0 && cpu1 >= cpu0 && res->durable)
            res->cpu_us = (cpu1 - cpu0) * 1e6 / (double)res->durable;
    } else {
        /* The server's end explains the producers' errors, not the other
         * way round: report it instead. */
        bench_describe_status(s.status, err, sizeof err);
        say(res->error, sizeof res->error, "%s ended during the run (%s; stopped from outside?)",
            s.name, err);
        rc = -1;
    }
out:
    if (s.pid) {
        /* A server that does not stop cleanly is a failed run too: its
         * figures were taken from something that was not well. */
        int st = bench_stop(s.pid, o->n_wrap ? 120000 : 15000, err, sizeof err);
        s.pid = 0;
        if (st != 0 && rc == 0) {
            say(res->error, sizeof res->error, "%s did not stop cleanly: %s", s.name, err);
            rc = -1;
        }
    }
    if (rc != 0) {
        fprintf(stderr, "bench-ingest: %s run failed (%zu B x %zu x %u): %s\n", s.name,
                ld->event_size, ld->batch, ld->producers, res->error);
        if (s.log[0]) {
            fprintf(stderr, "  last lines of %s:\n", s.log);
            bench_log_tail(s.log, stderr, 8);
        }
    }
    if (o->verbose && rc == 0 && !redis)
        bench_log_tail(s.log, stderr, 1); /* evbusd's totals: events, commits */
    if (!o->keep)
        bench_tmpdir_remove(s.dir);
    return rc;
}

static void print_machine(const options *o) {
    char model[256], load[128];
    bench_cpu_model(model, sizeof model);
    bench_loadavg(load, sizeof load);
    const char *fs = bench_fs_name(o->tmpdir);
    printf("machine: %ld CPUs (%s), load average %s at start; producers, client I/O threads\n"
           "         and the server share these CPUs\n",
           sysconf(_SC_NPROCESSORS_ONLN), model, load);
    printf("storage: run directories in %s (%s)%s\n", o->tmpdir, fs,
           strcmp(fs, "tmpfs") == 0 ? " -- WARNING: fsync is free on tmpfs, figures are not "
                                      "durable ones"
                                    : "");
    printf("load:    window %u requests in flight per producer; %u run(s) of %.1f s after %.1f s "
           "warm-up per cell; each figure is the median of the runs\n",
           o->window, o->runs, o->duration_s, o->warmup_s);
    printf("evbusd:  %s%s%s, map_size 8GiB, %s%s\n", o->evbusd, o->n_wrap ? " under " : "",
           o->n_wrap ? o->wrap[0] : "", o->ipc ? "ipc://" : "tcp://127.0.0.1",
           o->curve ? ", CURVE (producers authenticated, traffic encrypted)" : "");
    if (o->http)
        printf("http:    the same evbusd's EventBridge PutEvents API (ingest.http, unsigned on "
               "loopback);\n         a producer's window = that many kept-alive HTTP/1.1 "
               "connections, one request each\n\n");
    else
        printf("redis:   %s\n\n", o->no_redis
                                      ? "skipped (--no-redis)"
                                      : "XADD to one stream, appendonly yes, appendfsync always, "
                                        "a request = a batch of pipelined XADDs");
    printf("latency: from the publish call to the ack of the whole request (batch), in ms\n");
    printf("us/ev:   server CPU time (user + system, all threads) per durable event, over the "
           "whole run:\n         the server's cost, whoever else uses the CPUs\n\n");
    if (o->http)
        printf(
            "  size batch prod |    zmq ev/s    p50    p99   p999 RSS MiB  us/ev |    http ev/s  "
            "h.p99  us/ev |  zmq/http\n");
    else
        printf(
            "  size batch prod |   evbus ev/s    p50    p99   p999 RSS MiB  us/ev |   redis ev/s  "
            "r.p99  us/ev | evbus/redis\n");
    printf("------------------+------------------------------------------------+----------------"
           "-------------+------------\n");
    fflush(stdout);
}

typedef struct cell {
    size_t size, batch;
    unsigned producers;
    bench_result ev[MAX_RUNS], rd[MAX_RUNS];
} cell;

/* The median of one figure (a double at `offset` in bench_result) over the
 * runs that succeeded; *n gets how many did. */
static double median_of(const bench_result *rs, unsigned runs, size_t offset, size_t *n) {
    double v[MAX_RUNS];
    size_t k = 0;
    for (unsigned i = 0; i < runs; i++)
        if (!rs[i].error[0])
            memcpy(&v[k++], (const char *)&rs[i] + offset, sizeof v[0]);
    *n = k;
    return bench_median(v, k);
}

/* The first columns of a row: "256 B    10    4". */
static void cell_label(const cell *c, char *buf, size_t len) {
    char size_s[32];
    if (c->size % 1024 == 0)
        snprintf(size_s, sizeof size_s, "%zu KiB", c->size / 1024);
    else
        snprintf(size_s, sizeof size_s, "%zu B", c->size);
    snprintf(buf, len, "%6s %5zu %4u", size_s, c->batch, c->producers);
}

/* Open loop compares with Redis only: the HTTP producer keeps a closed
 * loop. */
static int open_peer(const options *o) {
    return !o->no_redis && !o->http;
}

static void print_row(const options *o, const cell *c) {
    char label[64], a[32], b[32];
    size_t n;
    cell_label(c, label, sizeof label);
    printf("%s |", label);

    double eps = median_of(c->ev, o->runs, offsetof(bench_result, events_per_s), &n);
    if (n) {
        printf(" %12s %6.2f %6.1f %6.1f %7.1f %6.2f |", bench_fmt_count(eps, a, sizeof a),
               median_of(c->ev, o->runs, offsetof(bench_result, p50_ms), &n),
               median_of(c->ev, o->runs, offsetof(bench_result, p99_ms), &n),
               median_of(c->ev, o->runs, offsetof(bench_result, p999_ms), &n),
               median_of(c->ev, o->runs, offsetof(bench_result, rss_mib), &n),
               median_of(c->ev, o->runs, offsetof(bench_result, cpu_us), &n));
    } else {
        printf(" %12s %6s %6s %6s %7s %6s |", "failed", "-", "-", "-", "-", "-");
    }
    if (o->no_redis && !o->http) {
        printf(" %12s %6s %6s | %10s\n", "-", "-", "-", "-");
        fflush(stdout);
        return;
    }
    double reps = median_of(c->rd, o->runs, offsetof(bench_result, events_per_s), &n);
    if (n)
        printf(" %12s %6.1f %6.2f |", bench_fmt_count(reps, b, sizeof b),
               median_of(c->rd, o->runs, offsetof(bench_result, p99_ms), &n),
               median_of(c->rd, o->runs, offsetof(bench_result, cpu_us), &n));
    else
        printf(" %12s %6s %6s |", "failed", "-", "-");
    /* Each evbus run is paired with the Redis run right after it, so that a
     * ratio compares the two under the same machine conditions. */
    double ratio[MAX_RUNS];
    size_t nratio = 0;
    for (unsigned i = 0; i < o->runs; i++)
        if (!c->ev[i].error[0] && !c->rd[i].error[0])
            ratio[nratio++] = c->ev[i].events_per_s / c->rd[i].events_per_s;
    if (nratio)
        printf(" %9.2fx\n", bench_median(ratio, nratio));
    else
        printf(" %10s\n", "-");
    fflush(stdout);
}

int main(int argc, char **argv) {
    options o;
    memset(&o, 0, sizeof o);
    if (parse_options(argc, argv, &o))
        return 2;
    bench_catch_signals();
    if (o.routers) {
        bench_routers_opts ro = {.evbusd = o.evbusd,
                                 .tmpdir = o.tmpdir,
                                 .runs = o.runs,
                                 .warmup_s = o.warmup_s,
                                 .duration_s = o.duration_s,
                                 .event_size = o.sizes.v[0],
                                 .batch = o.batches.v[0],
                                 .producers = o.producers.v,
                                 .n_producers = o.producers.n,
                                 .window = o.window,
                                 .resume_window = o.window < 8 ? o.window : 8,
                                 .kills = o.kills,
                                 .resend_ms = o.resend_ms,
                                 .keep = o.keep,
                                 .verbose = o.verbose};
        return bench_routers_run(&ro);
    }

    cell *c = calloc(1, sizeof *c);
    if (!c) {
        fprintf(stderr, "evbus-bench-ingest: out of memory\n");
        return 1;
    }
    print_machine(&o);
    int failures = 0;
    uint64_t not_stored = 0;
    open_loop_table open = {0};
    uint32_t nonce = (uint32_t)time(NULL) ^ (uint32_t)getpid() << 16;
    for (size_t si = 0; si < o.sizes.n && !bench_interrupted; si++) {
        for (size_t bi = 0; bi < o.batches.n && !bench_interrupted; bi++) {
            for (size_t pi = 0; pi < o.producers.n && !bench_interrupted; pi++) {
                memset(c, 0, sizeof *c);
                c->size = o.sizes.v[si];
                c->batch = o.batches.v[bi];
                c->producers = (unsigned)o.producers.v[pi];
                for (unsigned r = 0; r < o.runs && !bench_interrupted; r++) {
                    bench_load ld = {.event_size = c->size,
                                     .batch = c->batch,
                                     .producers = c->producers,
                                     .window = o.window,
                                     .warmup_s = o.warmup_s,
                                     .duration_s = o.duration_s,
                                     .nonce = nonce++,
                                     .curve = o.curve ? &o.keys : NULL};
                    failures += run_one(&o, 0, &ld, &c->ev[r]) != 0;
                    not_stored += c->ev[r].not_stored;
                    if ((!o.no_redis || o.http) && !bench_interrupted) {
                        ld.nonce = nonce++;
                        failures += run_one(&o, 1, &ld, &c->rd[r]) != 0;
                        not_stored += c->rd[r].not_stored;
                    }
                    if (o.verbose)
                        fprintf(stderr,
                                "bench-ingest: %zu B x %zu x %u run %u: evbus %.0f ev/s, "
                                "redis %.0f ev/s\n",
                                c->size, c->batch, c->producers, r + 1, c->ev[r].events_per_s,
                                c->rd[r].events_per_s);
                }
                if (!bench_interrupted)
                    print_row(&o, c);
                size_t ok;
                double max_eps =
                    median_of(c->ev, o.runs, offsetof(bench_result, events_per_s), &ok);
                open_ctx x = {&o,
                              {.event_size = c->size,
                               .batch = c->batch,
                               .producers = c->producers,
                               .window = o.window,
                               .warmup_s = o.warmup_s,
                               .duration_s = o.duration_s,
                               .curve = o.curve ? &o.keys : NULL},
                              &not_stored};
                char label[64];
                cell_label(c, label, sizeof label);
                if (o.open_loop.n && ok &&
                    open_loop_cell(&open, label, max_eps, &o.open_loop, o.runs,
                                   open_peer(&o) ? 2 : 1, run_open, &x, &nonce, &failures)) {
                    fprintf(stderr, "evbus-bench-ingest: out of memory\n");
                    failures++;
                }
            }
        }
    }
    free(c);
    const char *sides[2] = {"evbus", open_peer(&o) ? "redis" : NULL};
    open_loop_print(&open, "  size batch prod", "the ack of its whole batch", sides);
    open_loop_free(&open);
    char load[128];
    bench_loadavg(load, sizeof load);
    printf("\nload average %s at the end.", load);
    if (not_stored)
        printf(" %llu event(s) were answered rejected / retry later / not at all (see stderr).",
               (unsigned long long)not_stored);
    printf("\n");
    if (bench_interrupted) {
        fprintf(stderr, "evbus-bench-ingest: interrupted; servers stopped\n");
        return 130;
    }
    if (failures) {
        fprintf(stderr, "evbus-bench-ingest: %d run(s) failed (see above)\n", failures);
        return 1;
    }
    return 0;
}
