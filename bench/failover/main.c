/* evbus-bench-failover: throughput under failover. One evbusd with a target
 * in two regions (us-east-1 first, us-west-2 second) and the region-health
 * selector checking a health endpoint per region every second; a producer
 * publishing at a fixed rate; the primary fails and recovers twice: once
 * noticed by the health checks alone, once switched off by an operator
 * (`evbus region off`) at the moment it fails. Each region's endpoint is
 * the benchmark's fault sink (fault_sink.c), which answers at once or, while
 * its fault switch is on, refuses everything; its record says what each
 * region received, per millisecond and per event. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "failover.h"
#include "health.h"
#include "host.h"
#include "load.h"
#include "proc.h"

#define READY_SOURCE "com.example.bench.ready"
/* The drain fails when nothing new arrives for this long. */
#define STALL_MS 20000

const char *bench_name = "bench-failover";

typedef struct options {
    double rate;
    size_t batch, event_size;
    unsigned window;
    int64_t failback_hold_ms;
    const char *fault_result;
    int quick, keep, verbose;
    const char *evbusd, *evbus, *sink, *tmpdir, *out;
    char evbusd_found[PATH_MAX], evbus_found[PATH_MAX], sink_found[PATH_MAX];
} options;

/* One step of the scenario, at a time after the start of the load. */
typedef struct step {
    int64_t at_ms;
    enum fo_mark_kind kind;
} step;

/* The primary fails at 6 s (the health checks must notice), recovers at
 * 13 s (failback after recovery_threshold checks and failback_hold), fails
 * again at 20 s with an operator switching it off at once, recovers at
 * 25 s; the load ends at 31 s. --quick squeezes the same story into 7.5 s
 * (with failback_hold 0, so that the failback is done before the flip). */
static const step full_script[] = {
    {6000, FO_OUTAGE}, {13000, FO_RECOVER}, {20000, FO_FLIP}, {25000, FO_FLIP_RECOVER}};
static const int64_t full_end_ms = 31000;
static const step quick_script[] = {
    {1000, FO_OUTAGE}, {3300, FO_RECOVER}, {5800, FO_FLIP}, {6600, FO_FLIP_RECOVER}};
static const int64_t quick_end_ms = 7500;

/* Health checks: Route 53's semantics at evbus's fastest settings. */
#define INTERVAL_MS        1000
#define FAILURE_THRESHOLD  2
#define RECOVERY_THRESHOLD 2

__attribute__((format(printf, 3, 4))) static void say(char *buf, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: evbus-bench-failover [options]\n"
            "\n"
            "Throughput under failover: a producer at a fixed rate through evbusd to a target\n"
            "in two regions whose primary fails and recovers, once noticed by health checks\n"
            "(every 1 s, thresholds 2) and once switched off with `evbus region off`. Prints a\n"
            "per-second timeline, the recovery times, and checks that no acked event is lost.\n"
            "\n"
            "  --rate N            events per second, on a fixed schedule (default 20000)\n"
            "  --batch N           events per publish request (default 20)\n"
            "  --size N            event size, id + source + detail type + detail (default 256)\n"
            "  --window N          publish requests in flight at most (default 256)\n"
            "  --failback-hold S   the target's failback_hold (default 2; --quick: 0)\n"
            "  --fault-result R    what the failing region answers: target_fault (default:\n"
            "                      connection refused, as the AWS sinks report it) or retry\n"
            "                      (a region answering 5xx: spends the events' attempts)\n"
            "  --quick             smoke run: 2000 events/s, the same story in 7.5 s\n"
            "  --out DIR           also write DIR/timeline.dat and DIR/marks.gp for\n"
            "                      bench/failover/plot.gp\n"
            "  --evbusd PATH       the daemon (default: core/evbusd of this build tree)\n"
            "  --evbus PATH        the command-line tool (default: next to evbusd)\n"
            "  --sink PATH         the fault sink plugin (default: next to this program)\n"
            "  --tmpdir DIR        where the run directory goes (default: $TMPDIR or /tmp)\n"
            "  --keep              keep the run directory and evbusd's log\n"
            "  -v, --verbose       say what happens as it happens\n"
            "  -h, --help          this text\n");
}

/* A file in the directory of `of` (a path), or of this program when NULL. */
static int beside(const char *of, const char *name, char *out, size_t len) {
    char dir[PATH_MAX];
    if (of) {
        snprintf(dir, sizeof dir, "%s", of);
    } else {
        ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
        if (n <= 0)
            return -1;
        dir[n] = '\0';
    }
    char *slash = strrchr(dir, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    int w = snprintf(out, len, "%s/%s", dir, name);
    if (w < 0 || (size_t)w >= len)
        return -1;
    return access(out, R_OK);
}

static int parse_options(int argc, char **argv, options *o) {
    enum {
        O_RATE = 256,
        O_BATCH,
        O_SIZE,
        O_WINDOW,
        O_HOLD,
        O_FAULT,
        O_QUICK,
        O_OUT,
        O_EVBUSD,
        O_EVBUS,
        O_SINK,
        O_TMP,
        O_KEEP
    };
    static const struct option lo[] = {{"rate", required_argument, NULL, O_RATE},
                                       {"batch", required_argument, NULL, O_BATCH},
                                       {"size", required_argument, NULL, O_SIZE},
                                       {"window", required_argument, NULL, O_WINDOW},
                                       {"failback-hold", required_argument, NULL, O_HOLD},
                                       {"fault-result", required_argument, NULL, O_FAULT},
                                       {"quick", no_argument, NULL, O_QUICK},
                                       {"out", required_argument, NULL, O_OUT},
                                       {"evbusd", required_argument, NULL, O_EVBUSD},
                                       {"evbus", required_argument, NULL, O_EVBUS},
                                       {"sink", required_argument, NULL, O_SINK},
                                       {"tmpdir", required_argument, NULL, O_TMP},
                                       {"keep", no_argument, NULL, O_KEEP},
                                       {"verbose", no_argument, NULL, 'v'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    int have_rate = 0, have_hold = 0, c;
    size_t v;
    double secs;
    o->rate = 20000;
    o->batch = 20;
    o->event_size = 256;
    o->window = 256;
    o->failback_hold_ms = 2000;
    o->fault_result = "target_fault";
    o->tmpdir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    while ((c = getopt_long(argc, argv, "vh", lo, NULL)) != -1) {
        switch (c) {
        case O_RATE:
            if (bench_parse_size(optarg, &v) || v < 10 || v > 1000000)
                goto bad;
            o->rate = (double)v;
            have_rate = 1;
            break;
        case O_BATCH:
            if (bench_parse_size(optarg, &o->batch) || o->batch < 1 || o->batch > 10000)
                goto bad;
            break;
        case O_SIZE:
            if (bench_parse_size(optarg, &o->event_size) ||
                o->event_size < BENCH_MIN_EVENT_SIZE + 16 || o->event_size > 256 * 1024)
                goto bad;
            break;
        case O_WINDOW:
            if (bench_parse_size(optarg, &v) || v < 1 || v > 65536)
                goto bad;
            o->window = (unsigned)v;
            break;
        case O_HOLD:
            if (strcmp(optarg, "0") == 0)
                secs = 0;
            else if (bench_parse_seconds(optarg, &secs))
                goto bad;
            o->failback_hold_ms = (int64_t)(secs * 1000);
            have_hold = 1;
            break;
        case O_FAULT:
            if (strcmp(optarg, "retry") && strcmp(optarg, "target_fault"))
                goto bad;
            o->fault_result = optarg;
            break;
        case O_QUICK: o->quick = 1; break;
        case O_OUT: o->out = optarg; break;
        case O_EVBUSD: o->evbusd = optarg; break;
        case O_EVBUS: o->evbus = optarg; break;
        case O_SINK: o->sink = optarg; break;
        case O_TMP: o->tmpdir = optarg; break;
        case O_KEEP: o->keep = 1; break;
        case 'v': o->verbose = 1; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "evbus-bench-failover: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (o->quick && !have_rate)
        o->rate = 2000;
    if (o->quick && !have_hold)
        o->failback_hold_ms = 0;
    if (!o->evbusd) {
        if (bench_find_evbusd(o->evbusd_found, sizeof o->evbusd_found)) {
            fprintf(stderr, "evbus-bench-failover: cannot find evbusd (give --evbusd)\n");
            return -1;
        }
        o->evbusd = o->evbusd_found;
    }
    if (!o->evbus) {
        if (beside(o->evbusd, "evbus", o->evbus_found, sizeof o->evbus_found)) {
            fprintf(stderr, "evbus-bench-failover: no evbus next to %s (give --evbus)\n",
                    o->evbusd);
            return -1;
        }
        o->evbus = o->evbus_found;
    }
    if (!o->sink) {
        if (beside(NULL, "evbus_bench_fault_sink.so", o->sink_found, sizeof o->sink_found)) {
            fprintf(stderr, "evbus-bench-failover: no evbus_bench_fault_sink.so next to this "
                            "program (give --sink)\n");
            return -1;
        }
        o->sink = o->sink_found;
    }
    return 0;
bad:
    fprintf(stderr, "evbus-bench-failover: invalid value '%s' for --%s\n", optarg,
            lo[c - O_RATE].name);
    usage(stderr);
    return -1;
}

/* The record file the sink maps: created here, header first, so that both
 * regions' instances find it ready. */
static fo_record *record_create(const char *path, char *err, size_t errlen) {
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || ftruncate(fd, sizeof(fo_record)) != 0) {
        say(err, errlen, "cannot create %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    void *m = mmap(NULL, sizeof(fo_record), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        say(err, errlen, "cannot map %s: %s", path, strerror(errno));
        return NULL;
    }
    fo_record *r = m;
    r->magic = FO_MAGIC;
    r->size = sizeof(fo_record);
    return r;
}

static int write_config(const options *o, const char *dir, const char *endpoint,
                        bench_health *const hs[FO_REGIONS], char *err, size_t errlen) {
    char cfg[PATH_MAX];
    snprintf(cfg, sizeof cfg, "%s/evbus.yaml", dir);
    FILE *f = fopen(cfg, "w");
    if (!f) {
        say(err, errlen, "%s: cannot write: %s", cfg, strerror(errno));
        return -1;
    }
    fprintf(f,
            "region: us-east-1\n"
            "log_level: info\n"
            "ingest:\n"
            "  listen: [\"%s\"]\n"
            "storage:\n"
            "  data_dir: data\n"
            "  map_size: 8GiB\n"
            "regions:\n",
            endpoint);
    static const char *const names[FO_REGIONS] = {"us-east-1", "us-west-2"};
    for (int i = 0; i < FO_REGIONS; i++)
        fprintf(
            f,
            "  - name: %s\n"
            "    health_check: {url: \"%s\", interval: %dms, timeout: 500ms,\n"
            "                   failure_threshold: %d, recovery_threshold: %d, match: \"OK\"}\n",
            names[i], bench_health_url(hs[i]), INTERVAL_MS, FAILURE_THRESHOLD, RECOVERY_THRESHOLD);
    fprintf(f,
            "targets:\n"
            "  - name: orders\n"
            "    plugin: %s\n"
            "    policy: failover\n"
            "    failback: automatic\n"
            "    failback_hold: %lldms\n"
            "    batch_max_events: 100\n"
            "    config: {record: \"%s/record\", fault_result: %s}\n"
            "    regions:\n"
            "      us-east-1: {slot: 0}\n"
            "      us-west-2: {slot: 1}\n"
            "rules:\n"
            "  - name: bench\n"
            "    pattern: {source: [" BENCH_SOURCE "]}\n"
            "    targets: [orders]\n",
            o->sink, (long long)o->failback_hold_ms, dir, o->fault_result);
    if (fclose(f) != 0) {
        say(err, errlen, "%s: cannot write: %s", cfg, strerror(errno));
        return -1;
    }
    return 0;
}

/* Runs `evbus ARGS... -c CONFIG` with its output appended to DIR/cli.log;
 * returns its wait status and sets *took_ms to how long it took. */
static int cli(const options *o, const char *dir, const char *a1, const char *a2, const char *a3,
               double *took_ms) {
    char cfg[PATH_MAX], log[PATH_MAX], err[256];
    snprintf(cfg, sizeof cfg, "%s/evbus.yaml", dir);
    snprintf(log, sizeof log, "%s/cli.log", dir);
    char *argv[8], **a = argv;
    *a++ = (char *)o->evbus;
    for (const char *x[] = {a1, a2, a3}, **p = x; p < x + 3; p++)
        if (*p)
            *a++ = (char *)*p;
    *a++ = "-c";
    *a++ = cfg;
    *a = NULL;
    uint64_t t = bench_now_ns();
    pid_t pid;
    if (bench_spawn(argv, log, &pid, err, sizeof err)) {
        fprintf(stderr, "bench-failover: %s\n", err);
        return -1;
    }
    int st = -1;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    *took_ms = (double)(bench_now_ns() - t) / 1e6;
    return st;
}

static int64_t ms_since(uint64_t t0) {
    uint64_t now = bench_now_ns();
    return now > t0 ? (int64_t)((now - t0) / 1000000u) : 0;
}

static void sleep_until(uint64_t t0, int64_t at_ms) {
    while (!bench_interrupted && ms_since(t0) < at_ms) {
        struct timespec ts = {0, 200 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* Does one step: the switches first (fault, then health), then the
 * operator's command, so that the outage starts when the step's time is
 * taken. */
static void do_step(const options *o, const char *dir, fo_record *rec, bench_health *primary,
                    uint64_t t0, enum fo_mark_kind kind, fo_mark *m) {
    int down = kind == FO_OUTAGE || kind == FO_FLIP;
    m->kind = kind;
    m->at_ms = ms_since(t0);
    atomic_store(&rec->fault[0], (uint32_t)down);
    bench_health_set(primary, !down);
    if (kind == FO_FLIP || kind == FO_FLIP_RECOVER)
        m->cli_status = cli(o, dir, "region", down ? "off" : "on", "us-east-1", &m->cli_ms);
    if (o->verbose)
        fprintf(stderr, "bench-failover: %.3f s: %s%s\n", (double)m->at_ms / 1000,
                down ? "us-east-1 down" : "us-east-1 back",
                kind == FO_FLIP           ? " and `evbus region off us-east-1`"
                : kind == FO_FLIP_RECOVER ? " and `evbus region on us-east-1`"
                                          : "");
}

/* Waits until every acked event has arrived somewhere; fails when nothing
 * new arrives for STALL_MS. Returns when it ended, in ms since t0, or -1. */
static int64_t drain(const fo_producer *p, const fo_record *rec, pid_t pid, uint64_t t0) {
    uint64_t last = atomic_load(&rec->unique), progress = bench_now_ns();
    for (;;) {
        if (fo_count_lost(p, rec, p->sent) == 0)
            return ms_since(t0);
        if (bench_interrupted || !bench_alive(pid, NULL))
            return -1;
        uint64_t u = atomic_load(&rec->unique);
        if (u != last) {
            last = u;
            progress = bench_now_ns();
        } else if (bench_now_ns() - progress > (uint64_t)STALL_MS * 1000000u) {
            return -1;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* Waits until each health endpoint has answered enough checks for the
 * selector to call its region healthy. */
static int wait_checked(bench_health *const hs[FO_REGIONS], pid_t pid) {
    uint64_t end = bench_now_ns() + 15000ull * 1000000u;
    while (bench_now_ns() < end && !bench_interrupted && bench_alive(pid, NULL)) {
        int ok = 1;
        for (int i = 0; i < FO_REGIONS; i++)
            ok &= bench_health_checks(hs[i]) >= RECOVERY_THRESHOLD;
        if (ok)
            return 0;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

static void print_header(const options *o, const char *load) {
    char model[256];
    bench_cpu_model(model, sizeof model);
    printf("machine: %ld CPUs (%s), load average %s at start; the producer, evbusd and the\n"
           "         health endpoints share them\n",
           sysconf(_SC_NPROCESSORS_ONLN), model, load);
    printf("evbusd:  %s; target `orders` (policy failover, failback automatic after %.1f s)\n"
           "         in us-east-1 (primary) and us-west-2, each region an instance of\n"
           "         evbus_bench_fault_sink.so (answers at once; refuses with %s while down)\n",
           o->evbusd, (double)o->failback_hold_ms / 1000, o->fault_result);
    printf("checks:  region-health selector, HTTP every %d ms, failure_threshold %d,\n"
           "         recovery_threshold %d, against an endpoint per region in this process\n",
           INTERVAL_MS, FAILURE_THRESHOLD, RECOVERY_THRESHOLD);
    printf("load:    %.0f events/s of %zu B on a fixed schedule (open loop), %zu per request,\n"
           "         at most %u requests in flight\n\n",
           o->rate, o->event_size, o->batch, o->window);
    fflush(stdout);
}

int main(int argc, char **argv) {
    options o;
    memset(&o, 0, sizeof o);
    if (parse_options(argc, argv, &o))
        return 2;
    bench_catch_signals();
    char dir[PATH_MAX - 64] = "", path[PATH_MAX], err[512] = "", endpoint[64], load0[64], load1[64];
    bench_health *hs[FO_REGIONS] = {NULL, NULL};
    fo_record *rec = NULL;
    fo_producer prod = {0};
    pid_t pid = 0;
    pthread_t th;
    int started = 0, rc = 1;
    fo_run run = {.rate = o.rate,
                  .batch = o.batch,
                  .event_size = o.event_size,
                  .interval_ms = INTERVAL_MS,
                  .failback_hold_ms = o.failback_hold_ms,
                  .failure_threshold = FAILURE_THRESHOLD,
                  .recovery_threshold = RECOVERY_THRESHOLD,
                  .regions = {"us-east-1", "us-west-2"},
                  .drained_ms = -1};
    const step *script = o.quick ? quick_script : full_script;
    size_t n_steps = o.quick ? sizeof quick_script / sizeof *quick_script
                             : sizeof full_script / sizeof *full_script;
    run.end_ms = o.quick ? quick_end_ms : full_end_ms;

    bench_loadavg(load0, sizeof load0);
    print_header(&o, load0);
    if (bench_tmpdir_new(o.tmpdir, "failover", dir, sizeof dir)) {
        say(err, sizeof err, "cannot create a directory in %s: %s", o.tmpdir, strerror(errno));
        dir[0] = '\0';
        goto out;
    }
    snprintf(path, sizeof path, "%s/record", dir);
    if (!(rec = record_create(path, err, sizeof err)))
        goto out;
    for (int i = 0; i < FO_REGIONS; i++)
        if (bench_health_start(&hs[i], err, sizeof err))
            goto out;
    int port = bench_free_port();
    if (port < 0) {
        say(err, sizeof err, "no free loopback port: %s", strerror(errno));
        goto out;
    }
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    if (write_config(&o, dir, endpoint, hs, err, sizeof err))
        goto out;
    char cfg[PATH_MAX], log[PATH_MAX];
    snprintf(cfg, sizeof cfg, "%s/evbus.yaml", dir);
    snprintf(log, sizeof log, "%s/server.log", dir);
    char *eargv[] = {(char *)o.evbusd, "--config", cfg, NULL};
    if (bench_spawn(eargv, log, &pid, err, sizeof err))
        goto out;
    int status;
    if (bench_evbusd_wait_ready(endpoint, READY_SOURCE, &pid, &status, 15000, err, sizeof err))
        goto out;
    if (wait_checked(hs, pid)) {
        say(err, sizeof err, "the health endpoints were not checked within 15 s");
        goto out;
    }
    if (o.verbose)
        fprintf(stderr, "bench-failover: evbusd pid %ld in %s\n", (long)pid, dir);

    if (fo_producer_init(&prod)) {
        say(err, sizeof err, "out of memory");
        goto out;
    }
    prod.endpoint = endpoint;
    prod.rate = o.rate;
    prod.batch = o.batch;
    prod.event_size = o.event_size;
    prod.window = o.window;
    prod.nonce = (uint32_t)time(NULL) ^ (uint32_t)getpid() << 16;
    prod.end_ms = run.end_ms;
    /* The clock starts a little ahead, so that the sink and the producer
     * both count from it. */
    uint64_t t0 = bench_now_ns() + 50 * 1000000ull;
    prod.t0_ns = t0;
    atomic_store(&rec->t0_ns, t0);
    if (pthread_create(&th, NULL, fo_producer_main, &prod) != 0) {
        say(err, sizeof err, "cannot start the producer thread");
        goto out;
    }
    started = 1;
    for (size_t i = 0; i < n_steps && !bench_interrupted; i++) {
        sleep_until(t0, script[i].at_ms);
        do_step(&o, dir, rec, hs[0], t0, script[i].kind, &run.marks[run.n_marks++]);
    }
    pthread_join(th, NULL);
    started = 0;
    if (prod.error[0])
        fprintf(stderr, "bench-failover: producer: %s\n", prod.error);
    run.drained_ms = drain(&prod, rec, pid, t0);
    if (run.drained_ms < 0) {
        /* What evbusd says about the events that did not arrive. */
        double took;
        char clilog[PATH_MAX];
        snprintf(clilog, sizeof clilog, "%s/cli.log", dir);
        if (truncate(clilog, 0) != 0 && errno != ENOENT)
            fprintf(stderr, "bench-failover: %s: %s\n", clilog, strerror(errno));
        cli(&o, dir, "status", NULL, NULL, &took);
        cli(&o, dir, "region", "status", NULL, &took);
        cli(&o, dir, "dlq", "list", NULL, &took);
        fprintf(stderr, "bench-failover: acked events are missing; evbusd says:\n");
        bench_log_tail(clilog, stderr, 60);
    }
    rc = 0;
out:
    if (started) {
        bench_interrupted = 1;
        pthread_join(th, NULL);
    }
    if (pid) {
        char serr[256];
        if (bench_stop(pid, 15000, serr, sizeof serr) != 0 && rc == 0) {
            say(err, sizeof err, "evbusd did not stop cleanly: %s", serr);
            rc = 1;
        }
    }
    for (int i = 0; i < FO_REGIONS; i++)
        bench_health_stop(&hs[i]);
    if (rc == 0 && !bench_interrupted) {
        bench_loadavg(load1, sizeof load1);
        run.prod = &prod;
        run.rec = rec;
        uint64_t lost = fo_report(&run, load0, load1);
        if (lost)
            rc = 1;
        if (o.out && fo_write_data(&run, o.out, err, sizeof err)) {
            fprintf(stderr, "bench-failover: %s\n", err);
            rc = 1;
        }
    } else if (err[0]) {
        fprintf(stderr, "bench-failover: %s\n", err);
        if (dir[0]) {
            snprintf(path, sizeof path, "%s/server.log", dir);
            fprintf(stderr, "  last lines of %s:\n", path);
            bench_log_tail(path, stderr, 12);
        }
    }
    if (rec)
        munmap(rec, sizeof(fo_record));
    fo_producer_free(&prod);
    if (dir[0] && !o.keep)
        bench_tmpdir_remove(dir);
    else if (dir[0])
        fprintf(stderr, "bench-failover: kept %s\n", dir);
    if (bench_interrupted) {
        fprintf(stderr, "evbus-bench-failover: interrupted; evbusd stopped\n");
        return 130;
    }
    return rc;
}
