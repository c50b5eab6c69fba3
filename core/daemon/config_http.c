/* ingest.http: the keys of the EventBridge-compatible HTTP ingest and the
 * checks that span them. */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "endpoint.h"
#include "http_keys.h"

#define F(field) offsetof(evbus__config, field)

const evbus__cfg_field evbus__config_http_fields[] = {
    {.key = "listen",
     .type = EVBUS__CFG_STRING,
     .offset = F(http_listen),
     .pos_offset = F(http_listen_pos),
     .help = "HOST:PORT answering the EventBridge PutEvents API, e.g. 127.0.0.1:8088 (off if "
             "unset)"},
    {.key = "credentials",
     .type = EVBUS__CFG_STRING,
     .offset = F(http_credentials),
     .pos_offset = F(http_credentials_pos),
     .help = "access keys that may sign requests: lines NAME ACCESS-KEY-ID SECRET-ACCESS-KEY "
             "[SOURCE-OR-PREFIX* ...]"},
    {.key = "allow_unsigned",
     .type = EVBUS__CFG_BOOL,
     .offset = F(http_allow_unsigned),
     .pos_offset = F(http_allow_unsigned_pos),
     .help = "accept requests without a SigV4 signature (only with a loopback listen address)"},
    {.key = "tls_cert",
     .type = EVBUS__CFG_STRING,
     .offset = F(http_tls_cert),
     .pos_offset = F(http_tls_cert_pos),
     .help = "PEM certificate (chain) to serve HTTPS with; needs tls_key"},
    {.key = "tls_key",
     .type = EVBUS__CFG_STRING,
     .offset = F(http_tls_key),
     .pos_offset = F(http_tls_key_pos),
     .help = "PEM private key of tls_cert"},
    {.key = "max_connections",
     .type = EVBUS__CFG_UINT,
     .offset = F(http_max_connections),
     .min = 1,
     .max = 100000,
     .help = "HTTP connections open at once; more are closed at once"},
    {.key = "max_connections_per_ip",
     .type = EVBUS__CFG_UINT,
     .offset = F(http_max_connections_per_ip),
     .min = 1,
     .max = 100000,
     .help = "HTTP connections open at once from one address"},
    {.key = "connection_timeout",
     .type = EVBUS__CFG_DURATION,
     .offset = F(http_timeout_ms),
     .min = 1000,
     .max = 3600000,
     .help = "a connection idle this long, or slower than this to send a request, is closed "
             "(whole seconds)"},
    {.key = NULL},
};

void evbus__config_http_check(const evbus__config *cfg, evbus__cfg_errors *e) {
    struct sockaddr_in addr;
    const char *why;
    bool listen_ok = false;
    if (cfg->http_listen) {
        if (evbus__config_host_port(cfg->http_listen, &addr, &why))
            evbus__cfg_error(e, cfg->http_listen_pos, "ingest.http.listen", "%s, got '%s'", why,
                             cfg->http_listen);
        else
            listen_ok = true;
    }
    bool loopback = listen_ok && evbus__hostport_is_loopback(cfg->http_listen);
    if (cfg->http_allow_unsigned && listen_ok && !loopback)
        evbus__cfg_error(e, cfg->http_allow_unsigned_pos, "ingest.http.allow_unsigned",
                         "unsigned requests are accepted only on a loopback address, and "
                         "ingest.http.listen is %s: set ingest.http.credentials (access keys "
                         "that SDKs sign with) or listen on 127.0.0.1",
                         cfg->http_listen);
    if (cfg->http_allow_unsigned && !cfg->http_listen)
        evbus__cfg_error(e, cfg->http_allow_unsigned_pos, "ingest.http.allow_unsigned",
                         "has no effect without ingest.http.listen");
    if (listen_ok && !cfg->http_credentials && !cfg->http_allow_unsigned)
        evbus__cfg_error(e, cfg->http_listen_pos, "ingest.http.listen",
                         "requests cannot be authenticated: set ingest.http.credentials (a file "
                         "of lines NAME ACCESS-KEY-ID SECRET-ACCESS-KEY [SOURCE-OR-PREFIX* ...]), "
                         "or, on a loopback address only, ingest.http.allow_unsigned: true");
    if (!cfg->http_tls_cert != !cfg->http_tls_key)
        evbus__cfg_error(e, cfg->http_tls_cert ? cfg->http_tls_cert_pos : cfg->http_tls_key_pos,
                         cfg->http_tls_cert ? "ingest.http.tls_cert" : "ingest.http.tls_key",
                         "HTTPS needs both ingest.http.tls_cert and ingest.http.tls_key");
    /* A missing file was reported with the other key files; a present one
     * must parse. */
    if (cfg->http_credentials && cfg->http_credentials[0] == '/') {
        evbus__http_keys keys;
        char err[512];
        evbus_err rc = evbus__http_keys_load(cfg->http_credentials, &keys, err, sizeof err);
        if (rc == EVBUS_ECONFIG || rc == EVBUS_ENOMEM)
            evbus__cfg_error(e, cfg->http_credentials_pos, "ingest.http.credentials", "%s", err);
        else if (rc == EVBUS_OK && keys.n == 0)
            evbus__cfg_error(e, cfg->http_credentials_pos, "ingest.http.credentials",
                             "%s lists no access key: no request could be signed",
                             cfg->http_credentials);
        evbus__http_keys_free(&keys);
    }
}
