#include "curve_opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "common/curve_keys.h"

int evbus__cli_curve_load(const char *cmd, const char *server_key, const char *key_file,
                          evbus__cli_curve *out) {
    memset(out, 0, sizeof *out);
    if (!server_key)
        server_key = getenv("EVBUS_SERVER_KEY");
    if (!key_file)
        key_file = getenv("EVBUS_KEY");
    if (server_key && !*server_key)
        server_key = NULL;
    if (key_file && !*key_file)
        key_file = NULL;
    if (!server_key && !key_file)
        return 0;
    if (!server_key || !key_file) {
        fprintf(stderr,
                "evbus %s: CURVE needs both --server-key (evbusd's public key) and --key (this "
                "client's key file)\n",
                cmd);
        return 2;
    }
    char err[1024];
    if (evbus__curve_pubkey_read(server_key, out->server, err, sizeof err) != EVBUS_OK ||
        evbus__curve_keyfile_read(key_file, out->pub, out->sec, err, sizeof err) != EVBUS_OK) {
        fprintf(stderr, "evbus %s: %s\n", cmd, err);
        return 2;
    }
    out->on = true;
    return 0;
}

int evbus__cli_curve_apply(const evbus__cli_curve *c, void *sock) {
    if (!c->on)
        return 0;
    return zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, c->server, 41) == 0 &&
                   zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, c->pub, 41) == 0 &&
                   zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, c->sec, 41) == 0
               ? 0
               : -1;
}
