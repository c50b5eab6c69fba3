/* evbus-bench-dispatch: end-to-end delivery through evbusd. Producers publish
 * over libevbus as bench/ingest does; evbusd makes each event durable, routes
 * it to one target and hands it to that target's sink plugin; the benchmark
 * times every event from its publish call to its arrival at the sink, and
 * counts events per second end to end. Every run starts its own evbusd with
 * a fresh data directory and a generated configuration, and stops it. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "delivery_stats.h"
#include "follow.h"
#include "health.h"
#include "host.h"
#include "load.h"
#include "open_loop.h"
#include "proc.h"

#define MAX_RUNS  99
#define MAX_EVENT (256 * 1024)
/* A run fails when deliveries stop advancing for this long after the
 * producers have stopped. */
#define STALL_MS     15000
#define READY_SOURCE "com.example.bench.ready"

const char *bench_name = "bench-dispatch";

/* The sinks a cell can deliver to. null-2r is the null sink in a target
 * with two regions, routed by the region-health selector with a health
 * check per region: next to null, it shows what the selector costs. */
enum { SINK_NULL, SINK_NULL_2R, SINK_JSONL, SINK_JSONL_FSYNC, N_SINKS };
static const char *const sink_names[N_SINKS] = {"null", "null-2r", "jsonl", "jsonl+fsync"};

static int is_null(int sink) {
    return sink == SINK_NULL || sink == SINK_NULL_2R;
}

typedef struct options {
    unsigned runs;
    double duration_s, warmup_s;
    bench_list sizes, batches, producers;
    bench_list open_loop; /* percentages of a cell's maximum; empty: closed loop only */
    int sinks[N_SINKS];
    size_t publish_batch;
    unsigned window;
    size_t max_in_flight; /* the target's; 0: evbusd's default */
    size_t backlog;
    const char *evbusd, *null_sink, *jsonl_sink;
    char evbusd_found[PATH_MAX], null_found[PATH_MAX], jsonl_found[PATH_MAX];
    const char *tmpdir;
    int keep, verbose;
} options;

/* The evbusd of one run. */
typedef struct server {
    char dir[PATH_MAX - 64];
    char log[PATH_MAX];
    pid_t pid;               /* 0 once reaped */
    int status;              /* wait status once reaped */
    bench_health *health[2]; /* null-2r: each region's health endpoint */
} server;

/* What one run measured beyond what the load measures. */
typedef struct run {
    bench_result load;      /* producers: acks, and evbusd's RSS and CPU */
    double delivered_per_s; /* measured events / (last arrival - first publish) */
    double p50_ms, p99_ms, p999_ms;
    uint64_t redelivered; /* arrivals beyond one per accepted event */
    uint64_t retried;     /* arrivals with attempt > 1 (null sink only) */
    char error[256];
} run;

__attribute__((format(printf, 3, 4))) static void say(char *buf, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: evbus-bench-dispatch [options]\n"
            "\n"
            "Measures end-to-end delivery through evbusd: events/s from producers (libevbus,\n"
            "pipelined) to a sink plugin, and the time from each publish call to the event's\n"
            "arrival at the sink. Each run starts its own evbusd with a fresh data directory.\n"
            "\n"
            "  --runs N            runs per cell; each figure is the median (default 3)\n"
            "  --duration S        measured seconds per run (default 3)\n"
            "  --warmup S          seconds of load before measuring (default 0.5)\n"
            "  --quick             smoke run: 1 run of 0.5 s, 256 B, batch_max_events 100,\n"
            "                      1 producer, every sink\n"
            "  --sinks LIST        null,null-2r,jsonl,jsonl+fsync (default: all four)\n"
            "  --sizes LIST        event sizes, e.g. 256,1KiB (default 256,1KiB)\n"
            "  --batches LIST      the target's batch_max_events (default 10,100)\n"
            "  --producers LIST    producer threads, each with its own client (default 1,4)\n"
            "  --publish-batch N   events per publish request (default 100)\n"
            "  --window N          requests in flight per producer (default 64)\n"
            "  --open-loop LIST    after each cell, publish on a fixed schedule at these\n"
            "                      percentages of its deliv/s (e.g. 10,50,80) and time each\n"
            "                      event from its request's scheduled send time\n"
            "  --max-in-flight N   the target's max_in_flight (default: evbusd's)\n"
            "  --backlog N         producers hold while more than N events are published\n"
            "                      and not delivered (default 20000)\n"
            "  --evbusd PATH       the daemon (default: core/evbusd of this build tree)\n"
            "  --null-sink PATH    the null sink plugin (default: next to this program)\n"
            "  --jsonl-sink PATH   the example sink (default: examples/ of this build tree)\n"
            "  --tmpdir DIR        where run directories go (default: $TMPDIR or /tmp)\n"
            "  --keep              keep run directories and server logs\n"
            "  -v, --verbose       one line per run, with evbusd's pid (for perf -p)\n"
            "  -h, --help          this text\n");
}

/* A file of this build tree, relative to this program's directory. */
static int beside_self(const char *rel, char *out, size_t len) {
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    int w = snprintf(out, len, "%s/%s", self, rel);
    if (w < 0 || (size_t)w >= len)
        return -1;
    return access(out, R_OK);
}

static int parse_sinks(const char *arg, int *sinks) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", arg);
    memset(sinks, 0, N_SINKS * sizeof *sinks);
    int any = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        int found = 0;
        for (int i = 0; i < N_SINKS; i++) {
            if (strcmp(tok, sink_names[i]) == 0) {
                sinks[i] = found = any = 1;
            }
        }
        if (!found)
            return -1;
    }
    return any ? 0 : -1;
}

static int parse_options(int argc, char **argv, options *o) {
    enum {
        O_RUNS = 256,
        O_DUR,
        O_WARM,
        O_QUICK,
        O_SINKS,
        O_SIZES,
        O_BATCHES,
        O_PROD,
        O_PUBBATCH,
        O_WINDOW,
        O_OPEN,
        O_INFLIGHT,
        O_BACKLOG,
        O_EVBUSD,
        O_NULL,
        O_JSONL,
        O_TMP,
        O_KEEP
    };
    static const struct option lo[] = {{"runs", required_argument, NULL, O_RUNS},
                                       {"duration", required_argument, NULL, O_DUR},
                                       {"warmup", required_argument, NULL, O_WARM},
                                       {"quick", no_argument, NULL, O_QUICK},
                                       {"sinks", required_argument, NULL, O_SINKS},
                                       {"sizes", required_argument, NULL, O_SIZES},
                                       {"batches", required_argument, NULL, O_BATCHES},
                                       {"producers", required_argument, NULL, O_PROD},
                                       {"publish-batch", required_argument, NULL, O_PUBBATCH},
                                       {"window", required_argument, NULL, O_WINDOW},
                                       {"open-loop", required_argument, NULL, O_OPEN},
                                       {"max-in-flight", required_argument, NULL, O_INFLIGHT},
                                       {"backlog", required_argument, NULL, O_BACKLOG},
                                       {"evbusd", required_argument, NULL, O_EVBUSD},
                                       {"null-sink", required_argument, NULL, O_NULL},
                                       {"jsonl-sink", required_argument, NULL, O_JSONL},
                                       {"tmpdir", required_argument, NULL, O_TMP},
                                       {"keep", no_argument, NULL, O_KEEP},
                                       {"verbose", no_argument, NULL, 'v'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    int quick = 0, have_runs = 0, have_dur = 0, have_warm = 0, c;
    int have_sizes = 0, have_batches = 0, have_prod = 0, have_sinks = 0;
    o->runs = 3;
    o->duration_s = 3;
    o->warmup_s = 0.5;
    o->publish_batch = 100;
    o->window = 64;
    o->backlog = 20000;
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
        case O_SINKS:
            if (parse_sinks(optarg, o->sinks))
                goto bad;
            have_sinks = 1;
            break;
        case O_SIZES:
            if (bench_parse_list(optarg, &o->sizes, BENCH_MIN_EVENT_SIZE + BENCH_STAMP_LEN,
                                 MAX_EVENT, 1))
                goto bad;
            have_sizes = 1;
            break;
        case O_BATCHES:
            if (bench_parse_list(optarg, &o->batches, 1, 1024, 0))
                goto bad;
            have_batches = 1;
            break;
        case O_PROD:
            if (bench_parse_list(optarg, &o->producers, 1, 64, 0))
                goto bad;
            have_prod = 1;
            break;
        case O_PUBBATCH:
            if (bench_parse_size(optarg, &o->publish_batch) || o->publish_batch < 1 ||
                o->publish_batch > 10000)
                goto bad;
            break;
        case O_WINDOW:
            if (bench_parse_size(optarg, &v) || v < 1 || v > 65536)
                goto bad;
            o->window = (unsigned)v;
            break;
        case O_OPEN:
            if (bench_parse_list(optarg, &o->open_loop, 1, 100, 0))
                goto bad;
            break;
        case O_INFLIGHT:
            if (bench_parse_size(optarg, &o->max_in_flight) || o->max_in_flight < 1 ||
                o->max_in_flight > 4096)
                goto bad;
            break;
        case O_BACKLOG:
            if (bench_parse_size(optarg, &o->backlog) || o->backlog < 1)
                goto bad;
            break;
        case O_EVBUSD: o->evbusd = optarg; break;
        case O_NULL: o->null_sink = optarg; break;
        case O_JSONL: o->jsonl_sink = optarg; break;
        case O_TMP: o->tmpdir = optarg; break;
        case O_KEEP: o->keep = 1; break;
        case 'v': o->verbose = 1; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "evbus-bench-dispatch: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (quick) {
        o->runs = have_runs ? o->runs : 1;
        o->duration_s = have_dur ? o->duration_s : 0.5;
        o->warmup_s = have_warm ? o->warmup_s : 0.2;
    }
    if (!have_sinks)
        for (int i = 0; i < N_SINKS; i++)
            o->sinks[i] = 1;
    if (!have_sizes)
        o->sizes = quick ? (bench_list){{256}, 1} : (bench_list){{256, 1024}, 2};
    if (!have_batches)
        o->batches = quick ? (bench_list){{100}, 1} : (bench_list){{10, 100}, 2};
    if (!have_prod)
        o->producers = quick ? (bench_list){{1}, 1} : (bench_list){{1, 4}, 2};
    if (!o->evbusd) {
        if (bench_find_evbusd(o->evbusd_found, sizeof o->evbusd_found)) {
            fprintf(stderr, "evbus-bench-dispatch: cannot find evbusd next to this program; "
                            "build the evbusd target or give --evbusd PATH\n");
            return -1;
        }
        o->evbusd = o->evbusd_found;
    }
    if (!o->null_sink && (o->sinks[SINK_NULL] || o->sinks[SINK_NULL_2R])) {
        if (beside_self("evbus_bench_null_sink.so", o->null_found, sizeof o->null_found)) {
            fprintf(stderr, "evbus-bench-dispatch: cannot find evbus_bench_null_sink.so next to "
                            "this program; build it or give --null-sink PATH\n");
            return -1;
        }
        o->null_sink = o->null_found;
    }
    if (!o->jsonl_sink && (o->sinks[SINK_JSONL] || o->sinks[SINK_JSONL_FSYNC])) {
        if (beside_self("../../examples/evbus_sink_jsonl.so", o->jsonl_found,
                        sizeof o->jsonl_found)) {
            fprintf(stderr, "evbus-bench-dispatch: cannot find examples/evbus_sink_jsonl.so in "
                            "this build tree; build evbus_sink_jsonl or give --jsonl-sink PATH\n");
            return -1;
        }
        o->jsonl_sink = o->jsonl_found;
    }
    if (o->publish_batch * o->window > o->backlog)
        fprintf(stderr,
                "evbus-bench-dispatch: note: one producer's window (%zu events) is larger than "
                "--backlog (%zu); the backlog limit will set the pace\n",
                o->publish_batch * o->window, o->backlog);
    return 0;
bad:
    fprintf(stderr, "evbus-bench-dispatch: invalid value '%s' for --%s (see --help)\n", optarg,
            lo[c - O_RUNS].name);
    return -1;
}

/* Reaps the server if it has exited; 1 while it runs. */
static int server_alive(server *s) {
    if (s->pid && !bench_alive(s->pid, &s->status))
        s->pid = 0;
    return s->pid != 0;
}

/* Writes the configuration of one run: evbusd's defaults but for the map,
 * which must not fill, one target with the sink under test, and one rule
 * that sends the benchmark's events (and not the start-up probe) to it. */
static int write_config(const options *o, const server *s, int sink, size_t batch,
                        const char *endpoint, const char *cfg, char *err, size_t errlen) {
    FILE *f = fopen(cfg, "w");
    if (!f) {
        say(err, errlen, "%s: cannot write: %s", cfg, strerror(errno));
        return -1;
    }
    fprintf(f,
            "region: %s\n"
            "log_level: info\n"
            "ingest:\n"
            "  listen:\n"
            "    - %s\n"
            "storage:\n"
            "  data_dir: data\n"
            "  map_size: 8GiB\n",
            sink == SINK_NULL_2R ? "us-east-1" : "bench", endpoint);
    /* Two regions as bench/failover has them, both healthy: every event
     * goes to the first, whose record the benchmark reads. */
    if (sink == SINK_NULL_2R)
        fprintf(f,
                "regions:\n"
                "  - name: us-east-1\n"
                "    health_check: {url: \"%s\", interval: 1s, timeout: 500ms, "
                "failure_threshold: 2, recovery_threshold: 2, match: \"OK\"}\n"
                "  - name: us-west-2\n"
                "    health_check: {url: \"%s\", interval: 1s, timeout: 500ms, "
                "failure_threshold: 2, recovery_threshold: 2}\n",
                bench_health_url(s->health[0]), bench_health_url(s->health[1]));
    fprintf(f,
            "targets:\n"
            "  - name: sink\n"
            "    plugin: %s\n",
            is_null(sink) ? o->null_sink : o->jsonl_sink);
    if (sink == SINK_NULL_2R)
        fprintf(f,
                "    policy: failover\n"
                "    regions:\n"
                "      us-east-1: {stats_path: \"%s/stats\"}\n"
                "      us-west-2: {stats_path: \"%s/stats-us-west-2\"}\n",
                s->dir, s->dir);
    else
        fprintf(f, "    config:\n");
    if (sink == SINK_NULL)
        fprintf(f, "      stats_path: %s/stats\n", s->dir);
    else if (!is_null(sink))
        fprintf(f, "      path: %s/events.jsonl\n      fsync: %s\n", s->dir,
                sink == SINK_JSONL_FSYNC ? "true" : "false");
    fprintf(f, "    batch_max_events: %zu\n", batch);
    if (o->max_in_flight)
        fprintf(f, "    max_in_flight: %zu\n", o->max_in_flight);
    fprintf(f, "rules:\n"
               "  - name: bench\n"
               "    pattern: {source: [" BENCH_SOURCE "]}\n"
               "    targets: [sink]\n");
    if (fclose(f) != 0) {
        say(err, errlen, "%s: cannot write: %s", cfg, strerror(errno));
        return -1;
    }
    return 0;
}

static int start_evbusd(const options *o, server *s, int sink, size_t batch, char *endpoint,
                        size_t eplen, char *err, size_t errlen) {
    char cfg[PATH_MAX];
    snprintf(cfg, sizeof cfg, "%s/evbus.yaml", s->dir);
    int port = bench_free_port();
    if (port < 0) {
        say(err, errlen, "no free loopback port: %s", strerror(errno));
        return -1;
    }
    snprintf(endpoint, eplen, "tcp://127.0.0.1:%d", port);
    if (write_config(o, s, sink, batch, endpoint, cfg, err, errlen))
        return -1;
    char *argv[] = {(char *)o->evbusd, "--config", cfg, NULL};
    if (bench_spawn(argv, s->log, &s->pid, err, errlen))
        return -1;
    /* Ready means one event made it into the store and back; by then every
     * sink has been initialised (evbusd starts delivery before ingest). */
    return bench_evbusd_wait_ready(endpoint, READY_SOURCE, &s->pid, &s->status, 15000, err, errlen);
}

/* Maps the null sink's record read-only; the plugin created it in init. */
static dstats *map_stats(const char *path, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        say(err, errlen, "%s: %s (did the null sink start?)", path, strerror(errno));
        return NULL;
    }
    void *m = mmap(NULL, sizeof(dstats), PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        say(err, errlen, "cannot map %s: %s", path, strerror(errno));
        return NULL;
    }
    dstats *st = m;
    if (st->magic != DSTATS_MAGIC || st->size != sizeof(dstats)) {
        say(err, errlen, "%s is not a delivery record of this build (plugin from elsewhere?)",
            path);
        munmap(m, sizeof(dstats));
        return NULL;
    }
    return st;
}

/* Waits until `want` arrivals were seen, while they keep coming: the run
 * fails only when deliveries stall for STALL_MS (or evbusd ends). */
static int wait_delivered(server *s, const dstats *st, uint64_t want, char *err, size_t errlen) {
    uint64_t seen = atomic_load(&st->delivered), last_progress = bench_now_ns();
    while (seen < want) {
        if (bench_interrupted) {
            say(err, errlen, "interrupted");
            return -1;
        }
        if (!server_alive(s)) {
            say(err, errlen, "evbusd ended with %llu of %llu events delivered",
                (unsigned long long)seen, (unsigned long long)want);
            return -1;
        }
        uint64_t now = bench_now_ns();
        if (now - last_progress > (uint64_t)STALL_MS * 1000000u) {
            say(err, errlen, "delivery stalled at %llu of %llu events for %d s",
                (unsigned long long)seen, (unsigned long long)want, STALL_MS / 1000);
            return -1;
        }
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
        uint64_t n = atomic_load(&st->delivered);
        if (n != seen)
            last_progress = bench_now_ns();
        seen = n;
    }
    return 0;
}

/* One run against one freshly started evbusd. */
static int run_one(const options *o, int sink, bench_load *ld, run *r) {
    server s = {.pid = 0};
    char endpoint[64], err[512] = "", path[PATH_MAX];
    dstats *st = NULL; /* the null sink's mapping, or `local` for a file */
    dstats *local = NULL;
    follower *fol = NULL;
    _Atomic uint64_t published = 0;
    int rc = -1;
    memset(r, 0, sizeof *r);
    if (bench_tmpdir_new(o->tmpdir, "dispatch", s.dir, sizeof s.dir)) {
        say(r->error, sizeof r->error, "cannot create a directory in %s: %s", o->tmpdir,
            strerror(errno));
        goto out;
    }
    snprintf(s.log, sizeof s.log, "%s/server.log", s.dir);
    for (int i = 0; i < 2 && sink == SINK_NULL_2R; i++)
        if (bench_health_start(&s.health[i], err, sizeof err)) {
            say(r->error, sizeof r->error, "%s", err);
            goto out;
        }
    if (start_evbusd(o, &s, sink, ld->batch == 0 ? 1 : ld->batch, endpoint, sizeof endpoint, err,
                     sizeof err)) {
        say(r->error, sizeof r->error, "evbusd: %s", err);
        goto out;
    }
    if (is_null(sink)) {
        snprintf(path, sizeof path, "%s/stats", s.dir);
        st = map_stats(path, err, sizeof err);
    } else {
        snprintf(path, sizeof path, "%s/events.jsonl", s.dir);
        local = malloc(sizeof *local);
        if (local) {
            dstats_init(local);
            st = follower_start(path, local, &fol, err, sizeof err) == 0 ? local : NULL;
        } else {
            say(err, sizeof err, "out of memory");
        }
    }
    if (!st) {
        say(r->error, sizeof r->error, "%s", err);
        goto out;
    }
    if (o->verbose)
        fprintf(stderr, "bench-dispatch: evbusd pid %ld in %s\n", (long)s.pid, s.dir);

    bench_load load = *ld;
    load.batch = o->publish_batch;
    load.endpoint = endpoint;
    load.stamp = 1;
    load.max_undelivered = o->backlog;
    load.published = &published;
    load.delivered = &st->delivered;
    double cpu0 = bench_cpu_s(s.pid);
    if (bench_load_run(&load, bench_evbus_producer, &r->load) != 0) {
        say(r->error, sizeof r->error, "%s", r->load.error);
        goto out;
    }
    if (wait_delivered(&s, st, r->load.accepted, err, sizeof err)) {
        say(r->error, sizeof r->error, "%s", err);
        goto out;
    }
    r->load.rss_mib = bench_vmhwm_mib(s.pid);
    double cpu1 = bench_cpu_s(s.pid);
    if (cpu0 >= 0 && cpu1 >= cpu0 && r->load.accepted)
        r->load.cpu_us = (cpu1 - cpu0) * 1e6 / (double)r->load.accepted;
    rc = 0;
out:
    if (s.pid) {
        /* A server that does not stop cleanly is a failed run too. */
        int stopped = bench_stop(s.pid, 15000, err, sizeof err);
        s.pid = 0;
        if (stopped != 0 && rc == 0) {
            say(r->error, sizeof r->error, "evbusd did not stop cleanly: %s", err);
            rc = -1;
        }
    }
    for (int i = 0; i < 2; i++)
        bench_health_stop(&s.health[i]);
    /* The follower reads the file to its end, so that the figures below
     * include what arrived while evbusd stopped. */
    follower_stop(&fol);
    if (rc == 0) {
        uint64_t measured = atomic_load(&st->measured);
        uint64_t first = atomic_load(&st->first_t), last = atomic_load(&st->last_at);
        uint64_t delivered = atomic_load(&st->delivered);
        if (measured == 0 || last <= first) {
            say(r->error, sizeof r->error, "no measured event arrived at the sink");
            rc = -1;
        } else {
            r->delivered_per_s = (double)measured / ((double)(last - first) / 1e9);
            r->p50_ms = dstats_quantile_ms(st, 0.50);
            r->p99_ms = dstats_quantile_ms(st, 0.99);
            r->p999_ms = dstats_quantile_ms(st, 0.999);
            r->redelivered = delivered > r->load.accepted ? delivered - r->load.accepted : 0;
            r->retried = atomic_load(&st->retried);
        }
    }
    if (st && st != local)
        munmap(st, sizeof(dstats));
    free(local);
    if (rc != 0) {
        fprintf(stderr, "bench-dispatch: run failed (%s, %zu B, batch_max_events %zu, %u): %s\n",
                sink_names[sink], ld->event_size, ld->batch, ld->producers, r->error);
        if (s.log[0]) {
            fprintf(stderr, "  last lines of %s:\n", s.log);
            bench_log_tail(s.log, stderr, 8);
        }
    }
    if (!o->keep)
        bench_tmpdir_remove(s.dir);
    return rc;
}

static void print_header(const options *o) {
    char model[256], load[128];
    bench_cpu_model(model, sizeof model);
    bench_loadavg(load, sizeof load);
    const char *fs = bench_fs_name(o->tmpdir);
    printf("machine: %ld CPUs (%s), load average %s at start; producers, client I/O threads,\n"
           "         evbusd and the JSON Lines follower share these CPUs\n",
           sysconf(_SC_NPROCESSORS_ONLN), model, load);
    printf("storage: run directories in %s (%s)%s\n", o->tmpdir, fs,
           strcmp(fs, "tmpfs") == 0 ? " -- WARNING: fsync is free on tmpfs" : "");
    printf("load:    %zu events per publish request, window %u requests per producer, "
           "producers hold\n         above %zu events published and not delivered; "
           "%u run(s) of %.1f s after %.1f s warm-up\n         per cell; each figure is the "
           "median of the runs\n",
           o->publish_batch, o->window, o->backlog, o->runs, o->duration_s, o->warmup_s);
    char mif[32] = "evbusd's default";
    if (o->max_in_flight)
        snprintf(mif, sizeof mif, "%zu", o->max_in_flight);
    printf("evbusd:  %s, one target (max_in_flight: %s), one rule\n", o->evbusd, mif);
    printf("sinks:   null: evbus_bench_null_sink.so, reports DELIVERED at once\n"
           "         jsonl: examples/evbus_sink_jsonl.so appending to a file, fsync: false;\n"
           "         jsonl+fsync: the same with fsync: true (fdatasync per batch); an event is\n"
           "         delivered when its line is read back from the file\n"
           "         null-2r: the null sink in a target with two regions (us-east-1 first),\n"
           "         routed by the region-health selector with an HTTP check per region every\n"
           "         1 s (endpoints in this process); run in turns with null\n\n");
    printf("deliv/s: events published while measuring / (last one's arrival - first one's "
           "publish)\n");
    printf("latency: publish call to arrival at the sink, per event, in ms; when the sink is\n"
           "         the bottleneck it is about --backlog / deliv/s (queueing)\n");
    printf("acked/s: durable acks per second over the measured interval, as bench-ingest\n");
    printf("us/ev:   evbusd CPU time (user + system, all threads) per event, ingest and "
           "delivery\n");
    printf("redeliv: arrivals beyond one per accepted event, over all runs (expected 0)\n\n");
    printf("load:    the 1-minute load average when the row was printed (other work on the "
           "machine)\n\n");
    printf("sink         size batch prod |    deliv/s    p50    p99   p999 |    acked/s | "
           "RSS MiB  us/ev | redeliv | load\n");
    printf("-----------------------------+---------------------------------+------------+-"
           "---------------+---------+-----\n");
    fflush(stdout);
}

typedef struct cell {
    int sink;
    size_t size, batch;
    unsigned producers;
    run r[MAX_RUNS];
} cell;

/* The median of one figure (a double at `offset` in run) over the runs that
 * succeeded; *n gets how many did. */
static double median_of(const run *rs, unsigned runs, size_t offset, size_t *n) {
    double v[MAX_RUNS];
    size_t k = 0;
    for (unsigned i = 0; i < runs; i++)
        if (!rs[i].error[0])
            memcpy(&v[k++], (const char *)&rs[i] + offset, sizeof v[0]);
    *n = k;
    return bench_median(v, k);
}

/* The first columns of a row: "null         256 B   100    1". */
static void cell_label(const cell *c, char *buf, size_t len) {
    char size_s[32];
    if (c->size % 1024 == 0)
        snprintf(size_s, sizeof size_s, "%zu KiB", c->size / 1024);
    else
        snprintf(size_s, sizeof size_s, "%zu B", c->size);
    snprintf(buf, len, "%-11s %6s %5zu %4u", sink_names[c->sink], size_s, c->batch, c->producers);
}

static void print_row(const options *o, const cell *c) {
    char label[64], a[32], b[32], load[64];
    size_t n;
    bench_loadavg(load, sizeof load);
    cell_label(c, label, sizeof label);
    printf("%s |", label);
    double dps = median_of(c->r, o->runs, offsetof(run, delivered_per_s), &n);
    if (!n) {
        printf(" %10s %6s %6s %6s | %10s | %7s %6s | %7s\n", "failed", "-", "-", "-", "-", "-", "-",
               "-");
        fflush(stdout);
        return;
    }
    uint64_t redeliv = 0;
    for (unsigned i = 0; i < o->runs; i++)
        redeliv += c->r[i].redelivered;
    printf(
        " %10s %6.2f %6.1f %6.1f | %10s | %7.1f %6.2f | %7llu | %s\n",
        bench_fmt_count(dps, a, sizeof a), median_of(c->r, o->runs, offsetof(run, p50_ms), &n),
        median_of(c->r, o->runs, offsetof(run, p99_ms), &n),
        median_of(c->r, o->runs, offsetof(run, p999_ms), &n),
        bench_fmt_count(median_of(c->r, o->runs,
                                  offsetof(run, load) + offsetof(bench_result, events_per_s), &n),
                        b, sizeof b),
        median_of(c->r, o->runs, offsetof(run, load) + offsetof(bench_result, rss_mib), &n),
        median_of(c->r, o->runs, offsetof(run, load) + offsetof(bench_result, cpu_us), &n),
        (unsigned long long)redeliv, load);
    fflush(stdout);
}

/* null-2r next to null: what routing through the region-health selector
 * with two regions costs in steady state, as ratios of medians. */
static void print_selector_cost(const options *o, const cell *c) {
    size_t n1, n2;
    double d1 = median_of(c[0].r, o->runs, offsetof(run, delivered_per_s), &n1);
    double d2 = median_of(c[1].r, o->runs, offsetof(run, delivered_per_s), &n2);
    size_t off = offsetof(run, load) + offsetof(bench_result, cpu_us);
    double u1 = median_of(c[0].r, o->runs, off, &n1), u2 = median_of(c[1].r, o->runs, off, &n2);
    if (!n1 || !n2 || d1 <= 0 || u1 <= 0)
        return;
    printf("  null-2r / null: deliv/s %.1f %%, evbusd CPU per event %.1f %% (medians of %u "
           "runs, in turns)\n",
           100 * d2 / d1, 100 * u2 / u1, o->runs);
    fflush(stdout);
}

/* What run_open needs: the options and the cell. */
typedef struct open_ctx {
    const options *o;
    const cell *c;
    uint64_t *not_stored;
} open_ctx;

/* run_one at a fixed rate, for open_loop_cell: the latency is publish to
 * delivery. */
static int run_open(void *arg, int side, double rate, uint32_t nonce, open_loop_figures *out) {
    (void)side;
    open_ctx *x = arg;
    bench_load ld = {.event_size = x->c->size,
                     .batch = x->c->batch,
                     .producers = x->c->producers,
                     .window = x->o->window,
                     .warmup_s = x->o->warmup_s,
                     .duration_s = x->o->duration_s,
                     .nonce = nonce,
                     .rate = rate};
    run r;
    memset(&r, 0, sizeof r);
    int rc = run_one(x->o, x->c->sink, &ld, &r);
    *x->not_stored += r.load.not_stored;
    out->per_s = r.delivered_per_s;
    out->p50_ms = r.p50_ms;
    out->p99_ms = r.p99_ms;
    out->p999_ms = r.p999_ms;
    snprintf(out->error, sizeof out->error, "%s", r.error);
    return rc;
}

/* The open-loop rows of one cell, at percentages of its median deliv/s. */
static void open_loop_rows(const options *o, const cell *c, open_loop_table *t, uint32_t *nonce,
                           int *failures, uint64_t *not_stored) {
    size_t ok;
    double max = median_of(c->r, o->runs, offsetof(run, delivered_per_s), &ok);
    if (!o->open_loop.n || !ok)
        return;
    open_ctx x = {o, c, not_stored};
    char label[64];
    cell_label(c, label, sizeof label);
    if (open_loop_cell(t, label, max, &o->open_loop, o->runs, 1, run_open, &x, nonce, failures)) {
        fprintf(stderr, "evbus-bench-dispatch: out of memory\n");
        (*failures)++;
    }
}

int main(int argc, char **argv) {
    options o;
    memset(&o, 0, sizeof o);
    if (parse_options(argc, argv, &o))
        return 2;
    bench_catch_signals();

    cell *c = calloc(2, sizeof *c);
    if (!c) {
        fprintf(stderr, "evbus-bench-dispatch: out of memory\n");
        return 1;
    }
    print_header(&o);
    int failures = 0;
    uint64_t not_stored = 0, retried = 0;
    open_loop_table open = {0};
    uint32_t nonce = (uint32_t)time(NULL) ^ (uint32_t)getpid() << 16;
    for (int k = 0; k < N_SINKS && !bench_interrupted; k++) {
        if (!o.sinks[k])
            continue;
        /* null and null-2r run in turns, run for run, so that the machine's
         * load drifts alike over both and their ratio means something. */
        int pair = k == SINK_NULL && o.sinks[SINK_NULL_2R];
        if (k == SINK_NULL_2R && o.sinks[SINK_NULL])
            continue;
        for (size_t si = 0; si < o.sizes.n && !bench_interrupted; si++) {
            for (size_t bi = 0; bi < o.batches.n && !bench_interrupted; bi++) {
                for (size_t pi = 0; pi < o.producers.n && !bench_interrupted; pi++) {
                    memset(c, 0, 2 * sizeof *c);
                    for (int j = 0; j <= pair; j++) {
                        c[j].sink = j ? SINK_NULL_2R : k;
                        c[j].size = o.sizes.v[si];
                        c[j].batch = o.batches.v[bi];
                        c[j].producers = (unsigned)o.producers.v[pi];
                    }
                    for (unsigned r = 0; r < o.runs && !bench_interrupted; r++) {
                        for (int j = 0; j <= pair && !bench_interrupted; j++) {
                            /* batch here is the target's batch_max_events;
                             * the publish batch is set in run_one. */
                            bench_load ld = {.event_size = c[j].size,
                                             .batch = c[j].batch,
                                             .producers = c[j].producers,
                                             .window = o.window,
                                             .warmup_s = o.warmup_s,
                                             .duration_s = o.duration_s,
                                             .nonce = nonce++};
                            failures += run_one(&o, c[j].sink, &ld, &c[j].r[r]) != 0;
                            not_stored += c[j].r[r].load.not_stored;
                            retried += c[j].r[r].retried;
                            if (o.verbose)
                                fprintf(stderr,
                                        "bench-dispatch: %s %zu B x %zu x %u run %u: %.0f "
                                        "deliv/s, p99 %.1f ms\n",
                                        sink_names[c[j].sink], c[j].size, c[j].batch,
                                        c[j].producers, r + 1, c[j].r[r].delivered_per_s,
                                        c[j].r[r].p99_ms);
                        }
                    }
                    for (int j = 0; j <= pair && !bench_interrupted; j++)
                        print_row(&o, &c[j]);
                    if (pair && !bench_interrupted)
                        print_selector_cost(&o, c);
                    for (int j = 0; j <= pair && !bench_interrupted; j++)
                        open_loop_rows(&o, &c[j], &open, &nonce, &failures, &not_stored);
                }
            }
        }
    }
    free(c);
    const char *sides[2] = {"deliv", NULL};
    open_loop_print(&open, "sink         size batch prod", "the event's arrival at the sink",
                    sides);
    open_loop_free(&open);
    char load[128];
    bench_loadavg(load, sizeof load);
    printf("\nload average %s at the end.", load);
    if (not_stored)
        printf(" %llu event(s) were answered rejected / retry later / not at all (see stderr).",
               (unsigned long long)not_stored);
    if (retried)
        printf(" %llu delivery attempt(s) were retries.", (unsigned long long)retried);
    printf("\n");
    if (bench_interrupted) {
        fprintf(stderr, "evbus-bench-dispatch: interrupted; servers stopped\n");
        return 130;
    }
    if (failures) {
        fprintf(stderr, "evbus-bench-dispatch: %d run(s) failed (see above)\n", failures);
        return 1;
    }
    return 0;
}
