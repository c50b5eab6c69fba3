/* Authorized-keys files, key files and which endpoints count as loopback. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "auth_keys.h"
#include "common/curve_keys.h"
#include "endpoint.h"

static char dir[64];

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/evbus-keys-XXXXXX");
    cr_assert(mkdtemp(dir));
}

static void teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(auth_keys, .init = setup, .fini = teardown, .timeout = 20);

static const char *write_file(const char *name, const char *text, mode_t mode) {
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
    return path;
}

Test(auth_keys, a_list_is_read_sorted_with_its_source_limits) {
    char a[41], b[41], s[41], text[400];
    zmq_curve_keypair(a, s);
    zmq_curve_keypair(b, s);
    snprintf(text, sizeof text,
             "# producers\n\nzeta %s com.example.orders* com.example.audit\n  alpha\t%s  \n", a, b);
    evbus__keylist l;
    char err[256];
    cr_assert_eq(evbus__keylist_load(write_file("k", text, 0644), true, &l, err, sizeof err),
                 EVBUS_OK, "%s", err);
    cr_assert_eq(l.n, 2);
    cr_assert_str_eq(l.v[0].name, "alpha");
    cr_assert_eq(l.v[0].n_sources, 0);
    const evbus__principal *z = evbus__keylist_find_name(&l, "zeta");
    cr_assert(z);
    unsigned char raw[32];
    zmq_z85_decode(raw, a);
    cr_assert_eq(evbus__keylist_find_key(&l, raw), z);
    cr_assert_null(evbus__keylist_find_name(&l, "beta"));
    cr_assert(evbus__principal_allows(z, "com.example.orders"));
    cr_assert(evbus__principal_allows(z, "com.example.orders.eu"));
    cr_assert(evbus__principal_allows(z, "com.example.audit"));
    cr_assert_not(evbus__principal_allows(z, "com.example.auditing"));
    cr_assert_not(evbus__principal_allows(z, "com.example.order"));
    cr_assert(evbus__principal_allows(&l.v[0], "anything"));
    char text_out[100];
    evbus__principal_sources_text(z, text_out, sizeof text_out);
    cr_assert_str_eq(text_out, "com.example.orders*, com.example.audit");
    evbus__keylist_free(&l);
}

typedef struct bad_case {
    char line[160]; /* KEY is replaced by a valid public key, KEY2 by another */
    bool allow_sources;
    char why[100];
} bad_case;

ParameterizedTestParameters(auth_keys, bad_lines_name_their_line) {
    static bad_case cases[] = {
        {"alice", true, ":2: expected NAME Z85-PUBLIC-KEY"},
        {"al ice KEY", true, ":2: the second word is not a 40-character Z85"},
        {"al/ice KEY", true, ":2: the name must be 1..64 letters"},
        {"alice short", true, ":2: the second word is not a 40-character Z85"},
        {"ok KEY2", true, ":2: this name is already used"},
        {"other KEY", true, ":2: this key is already listed"},
        {"alice2 KEY2 a*b", true, ":2: a source limit must be an event source"},
        {"alice2 KEY2 com.example", false, ":2: operators' keys take no source limits"},
    };
    return cr_make_param_array(bad_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(bad_case *c, auth_keys, bad_lines_name_their_line) {
    char k1[41], k2[41], s[41], line[300], text[600];
    zmq_curve_keypair(k1, s);
    zmq_curve_keypair(k2, s);
    /* Line 1 is a good one named "ok" with k1. */
    const char *p = c->line;
    size_t n = 0;
    while (*p && n + 41 < sizeof line) {
        if (strncmp(p, "KEY2", 4) == 0) {
            memcpy(line + n, k2, 40);
            n += 40;
            p += 4;
        } else if (strncmp(p, "KEY", 3) == 0) {
            memcpy(line + n, k1, 40);
            n += 40;
            p += 3;
        } else {
            line[n++] = *p++;
        }
    }
    line[n] = '\0';
    snprintf(text, sizeof text, "ok %s\n%s\n", k1, line);
    evbus__keylist l;
    char err[512];
    cr_assert_eq(
        evbus__keylist_load(write_file("k", text, 0644), c->allow_sources, &l, err, sizeof err),
        EVBUS_ECONFIG, "%s accepted", c->line);
    cr_assert(strstr(err, c->why), "got: %s", err);
    cr_assert_not(strstr(err, k1) || strstr(err, k2), "no key in the error: %s", err);
    cr_assert_eq(l.n, 0);
}

Test(auth_keys, a_key_file_round_trips_and_is_checked) {
    char base[128], path[140], pub[41], sec[41], pub2[41], err[512];
    snprintf(base, sizeof base, "%s/server", dir);
    cr_assert_eq(evbus__curve_keygen(base, pub, err, sizeof err), EVBUS_OK, "%s", err);
    cr_assert_eq(evbus__curve_keygen(base, pub2, err, sizeof err), EVBUS_EBUSY,
                 "an existing key is never overwritten");
    snprintf(path, sizeof path, "%s.key", base);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_eq(evbus__curve_keyfile_read(path, pub2, sec, err, sizeof err), EVBUS_OK, "%s", err);
    cr_assert_str_eq(pub2, pub);
    snprintf(path, sizeof path, "%s.pub", base);
    cr_assert_eq(evbus__curve_pubkey_read(path, pub2, err, sizeof err), EVBUS_OK, "%s", err);
    cr_assert_str_eq(pub2, pub);
    cr_assert_eq(evbus__curve_pubkey_read(pub, pub2, err, sizeof err), EVBUS_OK);

    /* A secret that does not belong to the public key beside it. */
    char other_pub[41], other_sec[41], text[200];
    zmq_curve_keypair(other_pub, other_sec);
    snprintf(text, sizeof text, "%s\n%s\n", pub, other_sec);
    cr_assert_eq(
        evbus__curve_keyfile_read(write_file("mixed.key", text, 0600), pub2, sec, err, sizeof err),
        EVBUS_ECONFIG);
    cr_assert(strstr(err, "does not belong to its public key"), "%s", err);
    cr_assert_not(strstr(err, other_sec));
    /* Readable by others. */
    snprintf(text, sizeof text, "%s\n%s\n", other_pub, other_sec);
    cr_assert_eq(
        evbus__curve_keyfile_read(write_file("open.key", text, 0640), pub2, sec, err, sizeof err),
        EVBUS_ECONFIG);
    cr_assert(strstr(err, "mode 0640"), "%s", err);
}

typedef struct ep_case {
    char endpoint[64];
    bool loopback;
} ep_case;

ParameterizedTestParameters(auth_keys, loopback_endpoints) {
    static ep_case cases[] = {
        {"tcp://127.0.0.1:5555", true},  {"tcp://127.1.2.3:5555", true},
        {"tcp://[::1]:5555", true},      {"tcp://localhost:5555", true},
        {"tcp://0.0.0.0:5555", false},   {"tcp://*:5555", false},
        {"tcp://10.0.0.1:5555", false},  {"tcp://eth0:5555", false},
        {"tcp://128.0.0.1:5555", false}, {"ipc:///tmp/x.sock", false},
        {"tcp://[::]:5555", false},      {"tcp://example.com:5555", false},
    };
    return cr_make_param_array(ep_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(ep_case *c, auth_keys, loopback_endpoints) {
    cr_assert_eq(evbus__endpoint_is_loopback(c->endpoint), c->loopback, "%s", c->endpoint);
}
