#include "endpoint.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <net/if.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

static bool host_is_loopback(const char *host, size_t len) {
    char h[256];
    if (len == 0 || len >= sizeof h)
        return false;
    memcpy(h, host, len);
    h[len] = '\0';
    if (h[0] == '[' && h[len - 1] == ']') {
        memmove(h, h + 1, len - 2);
        h[len - 2] = '\0';
    }
    if (strcmp(h, "localhost") == 0 || strcmp(h, "::1") == 0)
        return true;
    struct in_addr a4;
    return inet_pton(AF_INET, h, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

bool evbus__hostport_is_loopback(const char *hostport) {
    const char *colon = strrchr(hostport, ':');
    return colon && host_is_loopback(hostport, (size_t)(colon - hostport));
}

bool evbus__endpoint_is_loopback(const char *endpoint) {
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return false;
    return evbus__hostport_is_loopback(endpoint + 6);
}

static bool is_tcp(const char *endpoint) {
    return strncmp(endpoint, "tcp://", 6) == 0;
}

void evbus__endpoint_check(evbus__cfg_errors *e, const char *ep, evbus__cfg_pos at, const char *key,
                           bool any_port) {
    if (strncmp(ep, "ipc://", 6) == 0) {
        /* An abstract name (@name) takes the leading NUL byte's place. */
        size_t len = strlen(ep + 6), room = sizeof((struct sockaddr_un *)0)->sun_path - 1;
        if (len == 0)
            evbus__cfg_error(e, at, key, "'%s' names no socket path", ep);
        else if (len > room)
            evbus__cfg_error(e, at, key,
                             "the path of %s is %zu bytes; a Unix socket path holds at most %zu: "
                             "choose a shorter one",
                             ep, len, room);
        return;
    }
    if (strncmp(ep, "tcp://", 6) != 0) {
        evbus__cfg_error(e, at, key, "'%s' is not a tcp:// or ipc:// endpoint", ep);
        return;
    }
    const char *colon = strrchr(ep + 6, ':');
    if (!colon || colon == ep + 6 || colon[-1] == ';') {
        evbus__cfg_error(e, at, key,
                         "expected tcp://HOST:PORT such as tcp://127.0.0.1:5555, got '%s'", ep);
        return;
    }
    const char *port = colon + 1;
    char *end;
    errno = 0;
    unsigned long n = strtoul(port, &end, 10);
    bool digits = port[0] >= '0' && port[0] <= '9' && !*end && !errno;
    if (strcmp(port, "*") == 0 || (digits && n == 0)) {
        if (!any_port)
            evbus__cfg_error(e, at, key,
                             "'%s' asks for any free port, but the evbus command finds this "
                             "socket by the port written here: give a port from 1 to 65535",
                             ep);
    } else if (!digits || n > 65535) {
        evbus__cfg_error(e, at, key, "the port of '%s' must be a number from 1 to 65535%s", ep,
                         any_port ? " (or * for any free port)" : "");
    }
}

void evbus__endpoint_check_ipc_dir(evbus__cfg_errors *e, const char *ep, evbus__cfg_pos at,
                                   const char *key, const char *data_dir) {
    if (strncmp(ep, "ipc://", 6) != 0 || ep[6] == '@' || !ep[6])
        return;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", ep + 6);
    dirname(dir);
    if (data_dir && strcmp(dir, data_dir) == 0)
        return; /* made by evbusd before it binds */
    struct stat st;
    if (stat(dir, &st) != 0) {
        /* A missing last directory is made at start-up (mode 0700), as for
         * /run/evbus before systemd's RuntimeDirectory exists; a missing
         * parent is a mistake. */
        int why = errno;
        char parent[PATH_MAX];
        snprintf(parent, sizeof parent, "%s", dir);
        dirname(parent);
        if (why != ENOENT || stat(parent, &st) != 0 || !S_ISDIR(st.st_mode))
            evbus__cfg_error(e, at, key, "cannot bind %s: directory %s: %s", ep, dir,
                             strerror(why));
    } else if (!S_ISDIR(st.st_mode))
        evbus__cfg_error(e, at, key, "cannot bind %s: %s is not a directory", ep, dir);
}

void evbus__endpoint_check_tcp_host(evbus__cfg_errors *e, const char *ep, evbus__cfg_pos at,
                                    const char *key) {
    if (strncmp(ep, "tcp://", 6) != 0)
        return;
    const char *colon = strrchr(ep + 6, ':');
    size_t len = colon ? (size_t)(colon - (ep + 6)) : 0;
    char host[256];
    if (len == 0 || len >= sizeof host)
        return; /* the form is evbus__endpoint_check's to judge */
    memcpy(host, ep + 6, len);
    host[len] = '\0';
    if (host[0] == '[' && host[len - 1] == ']') {
        memmove(host, host + 1, len - 2);
        host[len - 2] = '\0';
    }
    unsigned char addr[sizeof(struct in6_addr)];
    if (strcmp(host, "*") == 0 || inet_pton(AF_INET, host, addr) == 1 ||
        inet_pton(AF_INET6, host, addr) == 1 || if_nametoindex(host) != 0)
        return;
    /* libzmq binds a name it can resolve; only a definite "no such name" is
     * reported here, so a resolver that is briefly away does not fail a
     * configuration check that the bind itself would pass later. */
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (res)
        freeaddrinfo(res);
    if (rc == EAI_NONAME
#ifdef EAI_NODATA
        || rc == EAI_NODATA
#endif
    )
        evbus__cfg_error(e, at, key,
                         "cannot bind %s: '%s' is neither an address, an interface nor a host "
                         "name that resolves (use * for every interface)",
                         ep, host);
}

/* Both keys of a CURVE section, or neither. */
static void pair_check(evbus__cfg_errors *e, const char *section, const char *a,
                       evbus__cfg_pos a_pos, const char *a_name, const char *b,
                       evbus__cfg_pos b_pos, const char *b_name) {
    char key[64];
    if (!a != !b) {
        snprintf(key, sizeof key, "%s.%s", section, a ? a_name : b_name);
        evbus__cfg_error(e, a ? a_pos : b_pos, key, "is set but %s.%s is not: CURVE needs both",
                         section, a ? b_name : a_name);
    } else if (a && !zmq_has("curve")) {
        snprintf(key, sizeof key, "%s.%s", section, a_name);
        evbus__cfg_error(e, a_pos, key, "this libzmq was built without CURVE");
    }
}

void evbus__endpoint_policy_check(const evbus__config *cfg, evbus__cfg_errors *e) {
    pair_check(e, "ingest.curve", cfg->curve_secret_key, cfg->curve_secret_key_pos, "secret_key",
               cfg->curve_authorized_keys, cfg->curve_authorized_keys_pos, "authorized_keys");
    pair_check(e, "control.curve", cfg->control_curve_secret_key, cfg->control_curve_secret_key_pos,
               "secret_key", cfg->control_curve_operator_keys, cfg->control_curve_operator_keys_pos,
               "operator_keys");
    for (size_t i = 0; i < cfg->listen.n; i++) {
        const char *ep = cfg->listen.v[i];
        char key[48];
        snprintf(key, sizeof key, "ingest.listen[%zu]", i);
        if (is_tcp(ep) && !evbus__endpoint_is_loopback(ep) && !cfg->curve_secret_key &&
            !cfg->allow_unauthenticated)
            evbus__cfg_error(
                e, cfg->listen.pos ? cfg->listen.pos[i] : cfg->listen.at, key,
                "%s can be reached from other machines, and producers are not authenticated: "
                "set ingest.curve.secret_key and ingest.curve.authorized_keys (keys from `evbus "
                "keygen`), listen on 127.0.0.1, or set ingest.allow_unauthenticated: true to let "
                "anyone publish",
                ep);
    }
    if (cfg->control_listen && is_tcp(cfg->control_listen) &&
        !evbus__endpoint_is_loopback(cfg->control_listen) && !cfg->control_curve_secret_key)
        evbus__cfg_error(e, cfg->control_listen_pos, "control.listen",
                         "%s can be reached from other machines, and operators are not "
                         "authenticated: set control.curve.secret_key and "
                         "control.curve.operator_keys (keys from `evbus keygen`), or use an "
                         "ipc:// socket or 127.0.0.1",
                         cfg->control_listen);
    struct sockaddr_in addr;
    const char *why;
    /* A malformed metrics.listen is reported by its own check. */
    if (cfg->metrics_listen && !evbus__hostport_is_loopback(cfg->metrics_listen) &&
        !cfg->metrics_allow_unauthenticated &&
        evbus__config_host_port(cfg->metrics_listen, &addr, &why) == 0)
        evbus__cfg_error(e, cfg->metrics_listen_pos, "metrics.listen",
                         "%s can be reached from other machines, and the metrics endpoint has "
                         "no authentication: listen on 127.0.0.1 (behind a proxy that "
                         "authenticates), or set metrics.allow_unauthenticated: true to let "
                         "anyone read them",
                         cfg->metrics_listen);
}

struct evbus__ipc_claims {
    int fds[64];
    size_t n;
};

/* Claims one ipc:// path. Returns the lock's fd, or -1 with err set. */
static int claim(const char *key, const char *endpoint, char *err, size_t errlen, evbus_err *why) {
    const char *path = endpoint + 6;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    dirname(dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s: cannot create the directory %s: %s", key, endpoint, dir,
                 strerror(errno));
        *why = EVBUS_EIO;
        return -1;
    }
    char lock_path[PATH_MAX];
    if (snprintf(lock_path, sizeof lock_path, "%s.lock", path) >= (int)sizeof lock_path) {
        snprintf(err, errlen, "%s: %s: path too long", key, endpoint);
        *why = EVBUS_ECONFIG;
        return -1;
    }
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s: cannot create the lock file %s: %s", key, endpoint,
                 lock_path, strerror(errno));
        *why = EVBUS_EIO;
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        snprintf(err, errlen,
                 "%s: %s is in use by another evbusd (pid %s, holding %s): give this one "
                 "another path, or stop that one",
                 key, endpoint, pid[0] ? pid : "unknown", lock_path);
        close(fd);
        *why = EVBUS_EBUSY;
        return -1;
    }
    /* Something else may listen there without taking the lock. */
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) < sizeof sa.sun_path) {
        memcpy(sa.sun_path, path, strlen(path) + 1);
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof sa) == 0) {
            close(s);
            close(fd);
            snprintf(err, errlen,
                     "%s: %s is in use: another process accepts connections on it; give this "
                     "evbusd another path, or stop that process",
                     key, endpoint);
            *why = EVBUS_EBUSY;
            return -1;
        }
        if (s >= 0)
            close(s);
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        /* Only informative: the lock itself is what keeps others out. */
    }
    return fd;
}

evbus_err evbus__ipc_claim_all(const evbus__config *cfg, evbus__ipc_claims **out, char *err,
                               size_t errlen) {
    evbus__ipc_claims *c = calloc(1, sizeof *c);
    if (!c)
        return EVBUS_ENOMEM;
    evbus_err rc = EVBUS_OK;
    for (size_t i = 0; i <= cfg->listen.n && rc == EVBUS_OK; i++) {
        const char *ep = i < cfg->listen.n ? cfg->listen.v[i] : cfg->control_listen;
        const char *key = i < cfg->listen.n ? "ingest.listen" : "control.listen";
        if (!ep || strncmp(ep, "ipc://", 6) != 0 || ep[6] == '@')
            continue; /* abstract sockets (ipc://@name) have no file to take */
        if (c->n == sizeof c->fds / sizeof c->fds[0]) {
            snprintf(err, errlen, "%s: too many ipc:// endpoints", key);
            rc = EVBUS_ECONFIG;
            break;
        }
        int fd = claim(key, ep, err, errlen, &rc);
        if (fd >= 0)
            c->fds[c->n++] = fd;
    }
    if (rc != EVBUS_OK) {
        evbus__ipc_claims_release(&c);
        return rc;
    }
    *out = c;
    return EVBUS_OK;
}

void evbus__ipc_claims_release(evbus__ipc_claims **cp) {
    if (!cp || !*cp)
        return;
    for (size_t i = 0; i < (*cp)->n; i++)
        close((*cp)->fds[i]);
    free(*cp);
    *cp = NULL;
}

bool evbus__ipc_dir_private(const char *endpoint) {
    if (strncmp(endpoint, "ipc://", 6) != 0 || endpoint[6] == '@')
        return false;
    char copy[PATH_MAX];
    snprintf(copy, sizeof copy, "%s", endpoint + 6);
    struct stat st;
    return stat(dirname(copy), &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
           (st.st_mode & 077) == 0;
}

int evbus__ipc_restrict(const char *endpoint) {
    if (strncmp(endpoint, "ipc://", 6) != 0 || endpoint[6] == '@')
        return 0;
    return chmod(endpoint + 6, 0600);
}
