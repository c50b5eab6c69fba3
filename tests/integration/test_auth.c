/* Who may publish: producers authenticated with CURVE against an
 * authorized-keys file, per-producer source limits, revocation by SIGHUP,
 * and the start-up policy for listeners other machines can reach. A real
 * evbusd, real keys from `evbus keygen`, libevbus and the evbus CLI. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "evbus/evbus.h"
#include "harness.h"

static harness h;
static evbus_client_t *clients[3];

static void stop(void) {
    for (size_t i = 0; i < sizeof clients / sizeof clients[0]; i++)
        evbus_client_destroy(&clients[i]);
    harness_cleanup(&h);
}

TestSuite(auth, .fini = stop, .timeout = 90);

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* `evbus keygen DIR/name`; the pair is read back with the public API. */
static void keygen(const char *name, char pub[41], char sec[41]) {
    char cmd[1024], out[512], path[400], err[256];
    snprintf(path, sizeof path, "%s/%s", h.dir, name);
    snprintf(cmd, sizeof cmd, "%s keygen %s", harness_bin("evbus"), path);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "keygen: %s", out);
    snprintf(path, sizeof path, "%s/%s.key", h.dir, name);
    cr_assert_eq(evbus_curve_keyfile_read(path, pub, sec, err, sizeof err), EVBUS_OK, "%s", err);
}

static void write_file(const char *name, const char *text) {
    char path[400];
    snprintf(path, sizeof path, "%s/%s", h.dir, name);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(text, f);
    fclose(f);
}

static char server_pub[41], server_sec[41];

static const char CURVE_YAML[] = "  curve:\n"
                                 "    secret_key: server.key\n"
                                 "    authorized_keys: producers.keys\n";

/* A daemon whose ingest needs CURVE; `keys` is the authorized-keys file. */
static void start_curve(const char *keys) {
    harness_init(&h, NULL);
    keygen("server", server_pub, server_sec);
    write_file("producers.keys", keys);
    /* The curve section belongs under ingest: put it right after listen. */
    char path[400];
    snprintf(path, sizeof path, "%s", h.config);
    FILE *f = fopen(path, "r");
    char text[4096];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    char *after = strstr(text, "  ack_send_timeout");
    cr_assert(after);
    f = fopen(path, "w");
    fwrite(text, 1, (size_t)(after - text), f);
    fputs(CURVE_YAML, f);
    fputs(after, f);
    fclose(f);
    cr_assert(harness_start(&h), "evbusd did not become ready (log in %s)", h.log);
}

static evbus_client_t *curve_client(const char *pub, const char *sec, int timeout_ms) {
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.timeout_ms = timeout_ms;
    o.resend_ms = 300;
    o.curve_server_key = server_pub;
    o.curve_public_key = pub;
    o.curve_secret_key = sec;
    evbus_client_t *c = NULL;
    cr_assert_eq(evbus_client_new(h.endpoint, &o, &c), EVBUS_OK);
    return c;
}

static evbus_err publish(evbus_client_t *c, const char *id, const char *source, evbus_ack *ack) {
    evbus_event e = {.id = id, .source = source, .detail_type = "T", .detail = "{}"};
    return evbus_publish(c, &e, 1, ack);
}

/* `evbus status --json` through the daemon's control socket. */
static void status(char *out, size_t outlen) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s status --json -c %s", harness_bin("evbus"), h.config);
    cr_assert_eq(harness_run(cmd, out, outlen), 0, "evbus status failed");
}

static bool log_has(const char *needle, int timeout_ms) {
    static char buf[1 << 16];
    long long deadline = now_ms() + timeout_ms;
    do {
        harness_read_log(&h, buf, sizeof buf);
        if (strstr(buf, needle))
            return true;
        usleep(10000);
    } while (now_ms() < deadline);
    return false;
}

Test(auth, an_unknown_key_gets_no_ack_and_stores_nothing) {
    char alice_pub[41], alice_sec[41], mallory_pub[41], mallory_sec[41], keys[200];
    start_curve("");
    keygen("alice", alice_pub, alice_sec);
    keygen("mallory", mallory_pub, mallory_sec);
    snprintf(keys, sizeof keys, "# producers\nalice %s\n", alice_pub);
    write_file("producers.keys", keys);
    kill(h.pid, SIGHUP);
    cr_assert(log_has("producers.keys: 1 producers", 5000));

    clients[0] = curve_client(mallory_pub, mallory_sec, 1500);
    evbus_ack ack;
    cr_assert_eq(publish(clients[0], "m-1", "com.example.orders", &ack), EVBUS_ETIMEDOUT,
                 "an unknown key must get no answer at all");
    clients[1] = curve_client(alice_pub, alice_sec, 5000);
    cr_assert_eq(publish(clients[1], "a-1", "com.example.orders", &ack), EVBUS_OK);
    cr_assert_eq(ack.status, EVBUS_ACK_ACCEPTED);

    char st[8192];
    status(st, sizeof st);
    cr_assert(strstr(st, "\"events\": 1,"), "only alice's event is stored: %s", st);
    cr_assert(strstr(st, "\"requests\": 1,"), "mallory's request never reached ingest: %s", st);
    cr_assert(!strstr(st, "\"ingest\": 0,"), "the refusal is counted: %s", st);
    cr_assert(log_has(mallory_pub, 1000), "the refusal is logged with the public key");
    char log[1 << 16];
    harness_read_log(&h, log, sizeof log);
    cr_assert(!strstr(log, server_sec) && !strstr(log, mallory_sec) && !strstr(log, alice_sec),
              "no secret key in the log");
    cr_assert(!strstr(st, server_sec), "no secret key in the status");
}

Test(auth, a_known_key_with_a_forbidden_source_is_rejected_with_why) {
    char alice_pub[41], alice_sec[41], keys[300];
    start_curve("");
    keygen("alice", alice_pub, alice_sec);
    snprintf(keys, sizeof keys, "alice %s com.example.orders* com.example.audit\n", alice_pub);
    write_file("producers.keys", keys);
    kill(h.pid, SIGHUP);
    cr_assert(log_has("producers.keys: 1 producers", 5000));

    clients[0] = curve_client(alice_pub, alice_sec, 5000);
    evbus_ack ack;
    cr_assert_eq(publish(clients[0], "s-1", "com.example.orders.eu", &ack), EVBUS_OK);
    cr_assert_eq(ack.status, EVBUS_ACK_ACCEPTED, "a prefix allows it: %s", ack.reason);
    cr_assert_eq(publish(clients[0], "s-2", "com.example.audit", &ack), EVBUS_OK);
    cr_assert_eq(ack.status, EVBUS_ACK_ACCEPTED, "an exact source allows it: %s", ack.reason);
    cr_assert_eq(publish(clients[0], "s-3", "com.example.auditing", &ack), EVBUS_OK);
    cr_assert_eq(ack.status, EVBUS_ACK_REJECTED, "an exact source is not a prefix");
    cr_assert(strstr(ack.reason, "producer alice may not publish events of source "
                                 "'com.example.auditing'"),
              "reason: %s", ack.reason);
    cr_assert_eq(publish(clients[0], "s-4", "com.example.billing", &ack), EVBUS_OK);
    cr_assert_eq(ack.status, EVBUS_ACK_REJECTED);

    char st[8192];
    status(st, sizeof st);
    cr_assert(strstr(st, "\"name\": \"alice\""), "%s", st);
    cr_assert(strstr(st, "\"accepted\": 2,\n        \"rejected\": 2,"), "per producer: %s", st);
}

Test(auth, a_revoked_key_stops_working_after_sighup_and_others_keep_their_connection) {
    char a_pub[41], a_sec[41], b_pub[41], b_sec[41], keys[300];
    start_curve("");
    keygen("alice", a_pub, a_sec);
    keygen("bob", b_pub, b_sec);
    snprintf(keys, sizeof keys, "alice %s\nbob %s\n", a_pub, b_pub);
    write_file("producers.keys", keys);
    kill(h.pid, SIGHUP);
    cr_assert(log_has("producers.keys: 2 producers", 5000));

    clients[0] = curve_client(a_pub, a_sec, 1500);
    clients[1] = curve_client(b_pub, b_sec, 5000);
    evbus_ack ack;
    cr_assert_eq(publish(clients[0], "r-1", "s", &ack), EVBUS_OK);
    cr_assert_eq(ack.status, EVBUS_ACK_ACCEPTED);
    cr_assert_eq(publish(clients[1], "r-2", "s", &ack), EVBUS_OK);
    cr_assert_eq(ack.status, EVBUS_ACK_ACCEPTED);

    snprintf(keys, sizeof keys, "bob %s\n", b_pub);
    write_file("producers.keys", keys);
    kill(h.pid, SIGHUP);
    cr_assert(log_has("producers.keys: 1 producers", 5000));

    cr_assert_eq(publish(clients[0], "r-3", "s", &ack), EVBUS_ETIMEDOUT,
                 "alice's open connection gets no answer any more");
    clients[2] = curve_client(a_pub, a_sec, 1500);
    cr_assert_eq(publish(clients[2], "r-4", "s", &ack), EVBUS_ETIMEDOUT,
                 "nor does a new connection with her key");
    cr_assert_eq(publish(clients[1], "r-5", "s", &ack), EVBUS_OK, "bob's connection stays");
    cr_assert_eq(ack.status, EVBUS_ACK_ACCEPTED);

    char st[8192];
    status(st, sizeof st);
    cr_assert(strstr(st, "\"events\": 3,"), "r-3 and r-4 were not stored: %s", st);
    cr_assert(strstr(st, "\"name\": \"alice\",\n        \"authorized\": false"), "%s", st);
    cr_assert(log_has("no answer to a request from producer alice", 1000));
}

Test(auth, evbus_pub_publishes_with_keys_from_files) {
    char p_pub[41], p_sec[41], keys[200];
    start_curve("");
    keygen("producer", p_pub, p_sec);
    snprintf(keys, sizeof keys, "cli %s\n", p_pub);
    write_file("producers.keys", keys);
    kill(h.pid, SIGHUP);
    cr_assert(log_has("producers.keys: 1 producers", 5000));
    char cmd[2048], out[1024];
    snprintf(cmd, sizeof cmd,
             "%s pub -e %s --server-key %s/server.pub --key %s/producer.key -s a.b -t T "
             "-d '{}' --timeout 5000",
             harness_bin("evbus"), h.endpoint, h.dir, h.dir);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert(strncmp(out, "accepted seq=", 13) == 0, "%s", out);
    /* Without keys the same endpoint answers nothing. */
    snprintf(cmd, sizeof cmd, "%s pub -e %s -s a.b -t T -d '{}' --timeout 800",
             harness_bin("evbus"), h.endpoint);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 3, "%s", out);
}

/* `evbusd --check-config` on a configuration with `yaml` appended. */
static int check_config(const char *listen, const char *yaml, char *out, size_t outlen) {
    char cfg[400], cmd[1024];
    snprintf(cfg, sizeof cfg, "%s/check.yaml", h.dir);
    FILE *f = fopen(cfg, "w");
    fprintf(f, "ingest:\n  listen: [\"%s\"]\n%s", listen, yaml);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s --check-config --config %s 2>&1", harness_bin("evbusd"), cfg);
    return harness_run(cmd, out, outlen);
}

Test(auth, listeners_other_machines_reach_need_authentication_or_an_explicit_opt_out) {
    harness_init(&h, NULL);
    char out[2048];
    cr_assert_eq(check_config("tcp://0.0.0.0:5555", "", out, sizeof out), 1, "%s", out);
    cr_assert(
        strstr(out, "ingest.listen[0]: tcp://0.0.0.0:5555 can be reached from other machines"),
        "%s", out);
    cr_assert(strstr(out, "ingest.allow_unauthenticated: true"), "says how: %s", out);
    cr_assert_eq(
        check_config("tcp://0.0.0.0:5555", "  allow_unauthenticated: true\n", out, sizeof out), 0,
        "%s", out);
    cr_assert_eq(check_config("tcp://127.0.0.1:5555", "", out, sizeof out), 0, "%s", out);
    cr_assert_eq(check_config("tcp://[::1]:5555", "", out, sizeof out), 0, "%s", out);

    cr_assert_eq(
        check_config("tcp://127.0.0.1:5555", "control:\n  listen: tcp://*:5556\n", out, sizeof out),
        1, "%s", out);
    cr_assert(strstr(out, "control.listen: tcp://*:5556 can be reached from other machines, "
                          "and operators are not authenticated"),
              "%s", out);
    cr_assert_eq(
        check_config("tcp://127.0.0.1:5555", "metrics:\n  listen: 0.0.0.0:9464\n", out, sizeof out),
        1, "%s", out);
    cr_assert(strstr(out, "metrics.listen: 0.0.0.0:9464 can be reached"), "%s", out);
    cr_assert_eq(check_config("tcp://127.0.0.1:5555",
                              "metrics:\n  listen: 0.0.0.0:9464\n  allow_unauthenticated: true\n",
                              out, sizeof out),
                 0, "%s", out);
    cr_assert_eq(check_config("tcp://127.0.0.1:5555",
                              "  curve:\n    authorized_keys: producers.keys\n", out, sizeof out),
                 1, "%s", out);
    cr_assert(strstr(out, "ingest.curve.authorized_keys: is set but ingest.curve.secret_key is "
                          "not"),
              "%s", out);
}

Test(auth, a_bad_key_list_is_refused_with_its_line_and_without_the_key) {
    char pub[41], sec[41], keys[300], out[2048];
    harness_init(&h, NULL);
    keygen("server", pub, sec);
    /* A secret key pasted where a public key belongs must not be echoed. */
    snprintf(keys, sizeof keys, "alice %s\nbob %.39s\n", pub, sec);
    write_file("producers.keys", keys);
    cr_assert_eq(check_config("tcp://127.0.0.1:5555",
                              "  curve:\n    secret_key: server.key\n"
                              "    authorized_keys: producers.keys\n",
                              out, sizeof out),
                 1, "%s", out);
    cr_assert(strstr(out, "producers.keys:2: the second word is not a 40-character Z85 public "
                          "key"),
              "%s", out);
    char part[40];
    memcpy(part, sec, 39);
    part[39] = '\0';
    cr_assert(!strstr(out, part), "the key text is not in the error");

    /* A secret key file others can read is refused, as ssh does. */
    char path[400];
    snprintf(path, sizeof path, "%s/server.key", h.dir);
    chmod(path, 0644);
    snprintf(keys, sizeof keys, "alice %s\n", pub);
    write_file("producers.keys", keys);
    cr_assert_eq(check_config("tcp://127.0.0.1:5555",
                              "  curve:\n    secret_key: server.key\n"
                              "    authorized_keys: producers.keys\n",
                              out, sizeof out),
                 1, "%s", out);
    cr_assert(strstr(out, "must be readable by its owner only (mode 0644)"), "%s", out);
    cr_assert(!strstr(out, sec));
}
