#include "auth.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "common/curve_keys.h"
#include "common/log.h"
#include "common/util.h"
#include "endpoint.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_FRAMES   8

/* A producer's counters live as long as evbusd, by name, so that a reload
 * neither resets them nor leaves a pointer to freed memory in a batch. */
struct evbus__producer_stats {
    char name[EVBUS__PRINCIPAL_NAME_MAX + 1];
    atomic_uint_fast64_t accepted, rejected, refused;
    atomic_bool authorized;
    evbus__producer_stats *next;
};

struct evbus__producers {
    evbus__keylist keys;
    unsigned refs; /* under the auth's lock */
    unsigned gen;
};

/* One-line-a-second logging of refusals; the rest are counted. */
typedef struct rate_limit {
    int64_t last_ms;
    uint64_t suppressed;
} rate_limit;

struct evbus__auth {
    const evbus__config *cfg;
    void *zap;
    pthread_t thread;
    bool running;
    atomic_int stop;
    volatile sig_atomic_t *reload;
    bool ingest_curve, control_curve, control_ipc;
    char ingest_secret[41], control_secret[41];
    pthread_mutex_t lock; /* current, its refs, and the stats list */
    evbus__producers *current;
    atomic_uint gen;
    evbus__producer_stats *stats;
    evbus__keylist operators; /* the handler's thread only */
    atomic_uint_fast64_t refused_ingest, refused_control;
    rate_limit zap_log;     /* the handler's thread */
    rate_limit request_log; /* the receiver's thread */
};

/* True when a refusal may be logged now; `*more` is how many were not. */
static bool may_log(rate_limit *r, uint64_t *more) {
    int64_t now = evbus__now_mono_ms();
    if (r->last_ms && now - r->last_ms < 1000) {
        r->suppressed++;
        return false;
    }
    r->last_ms = now;
    *more = r->suppressed;
    r->suppressed = 0;
    return true;
}

static evbus__producer_stats *stats_for(evbus__auth *a, const char *name) {
    for (evbus__producer_stats *s = a->stats; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    evbus__producer_stats *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    snprintf(s->name, sizeof s->name, "%s", name);
    s->next = a->stats;
    a->stats = s;
    return s;
}

static void producers_unref(evbus__auth *a, evbus__producers *p) {
    if (!p)
        return;
    pthread_mutex_lock(&a->lock);
    bool last = --p->refs == 0;
    pthread_mutex_unlock(&a->lock);
    if (last) {
        evbus__keylist_free(&p->keys);
        free(p);
    }
}

/* Reads the producers' list and makes it the current one. On failure the
 * list in use stays. */
static evbus_err load_producers(evbus__auth *a, char *err, size_t errlen) {
    evbus__producers *p = calloc(1, sizeof *p);
    if (!p)
        return EVBUS_ENOMEM;
    evbus_err rc = evbus__keylist_load(a->cfg->curve_authorized_keys, true, &p->keys, err, errlen);
    if (rc != EVBUS_OK) {
        free(p);
        return rc;
    }
    pthread_mutex_lock(&a->lock);
    for (evbus__producer_stats *s = a->stats; s; s = s->next)
        atomic_store(&s->authorized, false);
    for (size_t i = 0; i < p->keys.n; i++) {
        evbus__producer_stats *s = stats_for(a, p->keys.v[i].name);
        if (!s) {
            rc = EVBUS_ENOMEM;
            break;
        }
        atomic_store(&s->authorized, true);
        p->keys.v[i].stats = s;
    }
    if (rc != EVBUS_OK) {
        /* Put the flags back as the list in use has them. */
        for (size_t i = 0; a->current && i < a->current->keys.n; i++)
            atomic_store(&((evbus__producer_stats *)a->current->keys.v[i].stats)->authorized, true);
        pthread_mutex_unlock(&a->lock);
        evbus__keylist_free(&p->keys);
        free(p);
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    evbus__producers *old = a->current;
    p->refs = 1;
    p->gen = atomic_load(&a->gen) + 1;
    a->current = p;
    atomic_store(&a->gen, p->gen);
    pthread_mutex_unlock(&a->lock);
    producers_unref(a, old);
    return EVBUS_OK;
}

static evbus_err load_operators(evbus__auth *a, char *err, size_t errlen) {
    evbus__keylist l;
    evbus_err rc = evbus__keylist_load(a->cfg->control_curve_operator_keys, false, &l, err, errlen);
    if (rc == EVBUS_OK) {
        evbus__keylist_free(&a->operators);
        a->operators = l;
    }
    return rc;
}

evbus_err evbus__auth_check(const evbus__config *cfg, char *err, size_t errlen) {
    char pub[41], sec[41], why[1024];
    evbus__keylist l;
    const char *secrets[2] = {cfg->curve_secret_key, cfg->control_curve_secret_key};
    const char *lists[2] = {cfg->curve_authorized_keys, cfg->control_curve_operator_keys};
    const evbus__cfg_pos secret_pos[2] = {cfg->curve_secret_key_pos,
                                          cfg->control_curve_secret_key_pos};
    const evbus__cfg_pos list_pos[2] = {cfg->curve_authorized_keys_pos,
                                        cfg->control_curve_operator_keys_pos};
    const char *secret_keys[2] = {"ingest.curve.secret_key", "control.curve.secret_key"};
    const char *list_keys[2] = {"ingest.curve.authorized_keys", "control.curve.operator_keys"};
    evbus__cfg_errors e;
    if (errlen)
        err[0] = '\0';
    evbus__cfg_errors_init(&e, cfg->path, err, errlen);
    /* The messages name the key file ("PATH:LINE: ..."); the configuration's
     * place and key say which setting named it. */
    for (int i = 0; i < 2; i++) {
        if (!secrets[i])
            continue;
        evbus_err rc = evbus__curve_keyfile_read(secrets[i], pub, sec, why, sizeof why);
        explicit_bzero(sec, sizeof sec);
        if (rc != EVBUS_OK)
            evbus__cfg_error(&e, secret_pos[i], secret_keys[i], "%s", why);
        rc = evbus__keylist_load(lists[i], i == 0, &l, why, sizeof why);
        if (rc != EVBUS_OK)
            evbus__cfg_error(&e, list_pos[i], list_keys[i], "%s", why);
        else
            evbus__keylist_free(&l);
    }
    return e.count ? EVBUS_ECONFIG : EVBUS_OK;
}

evbus_err evbus__auth_new(const evbus__config *cfg, void *zctx, evbus__auth **out, char *err,
                          size_t errlen) {
    evbus__auth *a = calloc(1, sizeof *a);
    if (!a)
        return EVBUS_ENOMEM;
    a->cfg = cfg;
    pthread_mutex_init(&a->lock, NULL);
    a->ingest_curve = cfg->curve_secret_key != NULL;
    a->control_curve = cfg->control_curve_secret_key != NULL;
    a->control_ipc = cfg->control_listen && strncmp(cfg->control_listen, "ipc://", 6) == 0;
    char pub[41];
    evbus_err rc = EVBUS_OK;
    if (a->ingest_curve &&
        ((rc = evbus__curve_keyfile_read(cfg->curve_secret_key, pub, a->ingest_secret, err,
                                         errlen)) != EVBUS_OK ||
         (rc = load_producers(a, err, errlen)) != EVBUS_OK))
        goto fail;
    if (a->control_curve &&
        ((rc = evbus__curve_keyfile_read(cfg->control_curve_secret_key, pub, a->control_secret, err,
                                         errlen)) != EVBUS_OK ||
         (rc = load_operators(a, err, errlen)) != EVBUS_OK))
        goto fail;
    a->zap = zmq_socket(zctx, ZMQ_REP);
    int linger = 0;
    if (!a->zap || zmq_setsockopt(a->zap, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_bind(a->zap, ZAP_ENDPOINT) != 0) {
        snprintf(err, errlen, "cannot bind the authentication handler (%s): %s", ZAP_ENDPOINT,
                 zmq_strerror(errno));
        rc = EVBUS_EZMQ;
        goto fail;
    }
    *out = a;
    return EVBUS_OK;
fail:
    evbus__auth_destroy(&a);
    return rc;
}

/* Answers one ZAP request (RFC 27): version, request id, status code and
 * text, user id, metadata. */
static void reply(evbus__auth *a, const zmq_msg_t *request_id, const char *code, const char *text,
                  const char *user) {
    zmq_msg_t id;
    zmq_msg_init(&id);
    zmq_msg_copy(&id, (zmq_msg_t *)request_id);
    zmq_send(a->zap, "1.0", 3, ZMQ_SNDMORE);
    if (zmq_msg_send(&id, a->zap, ZMQ_SNDMORE) < 0)
        zmq_msg_close(&id);
    zmq_send(a->zap, code, strlen(code), ZMQ_SNDMORE);
    zmq_send(a->zap, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(a->zap, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(a->zap, "", 0, 0);
}

static bool frame_is(const zmq_msg_t *m, const char *s) {
    size_t n = strlen(s);
    return zmq_msg_size((zmq_msg_t *)m) == n && memcmp(zmq_msg_data((zmq_msg_t *)m), s, n) == 0;
}

/* A frame as a C string, cut to fit. */
static void frame_text(const zmq_msg_t *m, char *out, size_t outlen) {
    size_t n = zmq_msg_size((zmq_msg_t *)m);
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, zmq_msg_data((zmq_msg_t *)m), n);
    out[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] >= 0x7f)
            out[i] = '?';
}

static void refuse_key(evbus__auth *a, const char *what, const char *file, const char *address,
                       const unsigned char key[32], atomic_uint_fast64_t *count) {
    uint64_t total = atomic_fetch_add(count, 1) + 1, more;
    if (!may_log(&a->zap_log, &more))
        return;
    char z85[41];
    zmq_z85_encode(z85, key, 32);
    EVBUS_LOG_W("auth",
                "refused a %s connection from %s: its public key %s is not in %s (%llu refused "
                "since start%s)",
                what, address[0] ? address : "(unknown address)", z85, file,
                (unsigned long long)total, more ? ", some not logged" : "");
}

/* Who a control peer is; NULL to refuse. */
static const char *control_peer(evbus__auth *a, const zmq_msg_t *mech, const zmq_msg_t *cred,
                                const char *address, char *user, size_t userlen) {
    if (frame_is(mech, "CURVE")) {
        if (zmq_msg_size((zmq_msg_t *)cred) != 32)
            return NULL;
        const evbus__principal *p =
            evbus__keylist_find_key(&a->operators, zmq_msg_data((zmq_msg_t *)cred));
        if (!p) {
            refuse_key(a, "control", a->cfg->control_curve_operator_keys, address,
                       zmq_msg_data((zmq_msg_t *)cred), &a->refused_control);
            return NULL;
        }
        snprintf(user, userlen, "operator:%s", p->name);
        return user;
    }
    if (!a->control_ipc)
        return "local"; /* loopback tcp:// without CURVE: the policy allows no other */
    /* libzmq reports an ipc peer as ":UID:GID:PID" where the kernel tells it
     * (SO_PEERCRED). */
    unsigned long uid;
    char extra;
    if (sscanf(address, ":%lu:%c", &uid, &extra) == 2) {
        if (uid == (unsigned long)geteuid() || uid == 0)
            return "owner";
        uint64_t total = atomic_fetch_add(&a->refused_control, 1) + 1, more;
        if (may_log(&a->zap_log, &more))
            EVBUS_LOG_W("auth",
                        "refused a control connection from uid %lu: only evbusd's user may use "
                        "%s (%llu refused since start)",
                        uid, a->cfg->control_listen, (unsigned long long)total);
        return NULL;
    }
    return evbus__ipc_dir_private(a->cfg->control_listen) ? "owner" : "local";
}

static void handle(evbus__auth *a) {
    zmq_msg_t f[ZAP_FRAMES];
    int n = 0;
    bool more = true;
    while (more) {
        zmq_msg_t *m = &f[n < ZAP_FRAMES ? n : ZAP_FRAMES - 1];
        if (n >= ZAP_FRAMES)
            zmq_msg_close(m);
        zmq_msg_init(m);
        if (zmq_msg_recv(m, a->zap, 0) < 0) {
            zmq_msg_close(m);
            break;
        }
        more = zmq_msg_more(m);
        if (n < ZAP_FRAMES)
            n++;
    }
    /* version, request id, domain, address, routing id, mechanism, creds */
    if (n < 6 || !frame_is(&f[0], "1.0")) {
        if (n >= 2)
            reply(a, &f[1], "500", "malformed ZAP request", "");
        else
            zmq_send(a->zap, "", 0, 0); /* keep the REP socket's turn */
        goto out;
    }
    char address[128], user[EVBUS__PRINCIPAL_NAME_MAX + 16];
    frame_text(&f[3], address, sizeof address);
    const zmq_msg_t *cred = n >= 7 ? &f[6] : &f[5];
    if (frame_is(&f[2], EVBUS__ZAP_DOMAIN_INGEST)) {
        const evbus__principal *p = NULL;
        if (a->current && frame_is(&f[5], "CURVE") && n >= 7 && zmq_msg_size(&f[6]) == 32)
            p = evbus__keylist_find_key(&a->current->keys, zmq_msg_data(&f[6]));
        if (p) {
            reply(a, &f[1], "200", "OK", p->name);
        } else {
            if (frame_is(&f[5], "CURVE") && n >= 7 && zmq_msg_size(&f[6]) == 32)
                refuse_key(a, "producer", a->cfg->curve_authorized_keys, address,
                           zmq_msg_data(&f[6]), &a->refused_ingest);
            reply(a, &f[1], "400", "unknown key", "");
        }
    } else if (frame_is(&f[2], EVBUS__ZAP_DOMAIN_CONTROL)) {
        const char *who = control_peer(a, &f[5], cred, address, user, sizeof user);
        if (who)
            reply(a, &f[1], "200", "OK", who);
        else
            reply(a, &f[1], "400", "not allowed", "");
    } else {
        reply(a, &f[1], "400", "unknown domain", "");
    }
out:
    for (int i = 0; i < n; i++)
        zmq_msg_close(&f[i]);
}

static void reload(evbus__auth *a) {
    char err[1024];
    if (a->ingest_curve) {
        if (load_producers(a, err, sizeof err) == EVBUS_OK)
            EVBUS_LOG_I("auth", "reloaded %s: %zu producers", a->cfg->curve_authorized_keys,
                        a->current->keys.n);
        else
            EVBUS_LOG_E("auth", "%s; the producers' keys in use stay", err);
    }
    if (a->control_curve) {
        if (load_operators(a, err, sizeof err) == EVBUS_OK)
            EVBUS_LOG_I("auth", "reloaded %s: %zu operators", a->cfg->control_curve_operator_keys,
                        a->operators.n);
        else
            EVBUS_LOG_E("auth", "%s; the operators' keys in use stay", err);
    }
    if (!a->ingest_curve && !a->control_curve)
        EVBUS_LOG_I("auth", "reload: no key lists are configured");
}

static void *auth_main(void *arg) {
    evbus__auth *a = arg;
    while (!atomic_load(&a->stop)) {
        if (a->reload && *a->reload) {
            *a->reload = 0;
            reload(a);
        }
        zmq_pollitem_t item = {a->zap, 0, ZMQ_POLLIN, 0};
        int n = zmq_poll(&item, 1, 200);
        if (n < 0 && errno != EINTR) {
            EVBUS_LOG_E("auth", "poll failed: %s", zmq_strerror(errno));
            break;
        }
        if (n > 0)
            handle(a);
    }
    return NULL;
}

evbus_err evbus__auth_start(evbus__auth *a, volatile sig_atomic_t *reload_flag) {
    a->reload = reload_flag;
    if (pthread_create(&a->thread, NULL, auth_main, a) != 0)
        return EVBUS_ENOMEM;
    a->running = true;
    return EVBUS_OK;
}

void evbus__auth_destroy(evbus__auth **ap) {
    if (!ap || !*ap)
        return;
    evbus__auth *a = *ap;
    if (a->running) {
        atomic_store(&a->stop, 1);
        pthread_join(a->thread, NULL);
    }
    if (a->zap)
        zmq_close(a->zap);
    producers_unref(a, a->current);
    evbus__keylist_free(&a->operators);
    for (evbus__producer_stats *s = a->stats, *next; s; s = next) {
        next = s->next;
        free(s);
    }
    explicit_bzero(a->ingest_secret, sizeof a->ingest_secret);
    explicit_bzero(a->control_secret, sizeof a->control_secret);
    pthread_mutex_destroy(&a->lock);
    free(a);
    *ap = NULL;
}

static evbus_err curve_server(void *sock, const char *secret, const char *what, char *err,
                              size_t errlen) {
    int one = 1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret, strlen(secret)) != 0) {
        snprintf(err, errlen, "cannot make the %s socket a CURVE server: %s", what,
                 zmq_strerror(errno));
        return EVBUS_EZMQ;
    }
    return EVBUS_OK;
}

evbus_err evbus__auth_secure_ingest(evbus__auth *a, void *sock, char *err, size_t errlen) {
    if (!a || !a->ingest_curve)
        return EVBUS_OK;
    evbus_err rc = curve_server(sock, a->ingest_secret, "ingest", err, errlen);
    if (rc == EVBUS_OK && zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, EVBUS__ZAP_DOMAIN_INGEST,
                                         strlen(EVBUS__ZAP_DOMAIN_INGEST)) != 0) {
        snprintf(err, errlen, "cannot set the ingest socket's ZAP domain: %s", zmq_strerror(errno));
        rc = EVBUS_EZMQ;
    }
    return rc;
}

evbus_err evbus__auth_secure_control(evbus__auth *a, void *sock, char *err, size_t errlen) {
    if (!a)
        return EVBUS_OK;
    if (a->control_curve) {
        evbus_err rc = curve_server(sock, a->control_secret, "control", err, errlen);
        if (rc != EVBUS_OK)
            return rc;
    }
    if (zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, EVBUS__ZAP_DOMAIN_CONTROL,
                       strlen(EVBUS__ZAP_DOMAIN_CONTROL)) != 0) {
        snprintf(err, errlen, "cannot set the control socket's ZAP domain: %s",
                 zmq_strerror(errno));
        return EVBUS_EZMQ;
    }
    return EVBUS_OK;
}

bool evbus__auth_may_operate(void *msg) {
    const char *u = zmq_msg_gets(msg, "User-Id");
    return u && (strcmp(u, "owner") == 0 || strncmp(u, "operator:", 9) == 0);
}

const evbus__producers *evbus__auth_producers(evbus__auth *a, const evbus__producers *held) {
    if (!a || !a->ingest_curve)
        return NULL;
    if (held && held->gen == atomic_load(&a->gen))
        return held;
    pthread_mutex_lock(&a->lock);
    evbus__producers *p = a->current;
    p->refs++;
    pthread_mutex_unlock(&a->lock);
    producers_unref(a, (evbus__producers *)held);
    return p;
}

void evbus__auth_producers_release(evbus__auth *a, const evbus__producers *p) {
    if (a && p)
        producers_unref(a, (evbus__producers *)p);
}

const evbus__principal *evbus__auth_admit(evbus__auth *a, const evbus__producers *p, void *msg) {
    const char *name = zmq_msg_gets(msg, "User-Id");
    const evbus__principal *who = name ? evbus__keylist_find_name(&p->keys, name) : NULL;
    if (who)
        return who;
    /* Revoked since it connected (or, impossibly, no user id at all). */
    evbus__producer_stats *s = NULL;
    if (name) {
        pthread_mutex_lock(&a->lock);
        s = stats_for(a, name);
        pthread_mutex_unlock(&a->lock);
    }
    uint64_t total = s ? atomic_fetch_add(&s->refused, 1) + 1 : 0, more;
    if (may_log(&a->request_log, &more))
        EVBUS_LOG_W("auth",
                    "no answer to a request from producer %s: it is no longer in %s (%llu "
                    "requests refused)",
                    name ? name : "(unnamed)", a->cfg->curve_authorized_keys,
                    (unsigned long long)total);
    return NULL;
}

evbus__producer_stats *evbus__auth_stats_of(const evbus__principal *p) {
    return p->stats;
}

bool evbus__auth_may_publish(const evbus__principal *p, const char *source, char *why,
                             size_t whylen) {
    if (evbus__principal_allows(p, source))
        return true;
    char allowed[200];
    evbus__principal_sources_text(p, allowed, sizeof allowed);
    snprintf(why, whylen,
             "producer %s may not publish events of source '%s' (its authorized key allows: %s)",
             p->name, source, allowed);
    return false;
}

void evbus__producer_count(evbus__producer_stats *s, uint64_t accepted, uint64_t rejected) {
    if (!s)
        return;
    if (accepted)
        atomic_fetch_add(&s->accepted, accepted);
    if (rejected)
        atomic_fetch_add(&s->rejected, rejected);
}

json_t *evbus__auth_status(evbus__auth *a) {
    json_t *producers = json_array();
    pthread_mutex_lock(&a->lock);
    for (evbus__producer_stats *s = a->stats; s; s = s->next)
        json_array_append_new(producers,
                              json_pack("{s:s, s:b, s:I, s:I, s:I}", "name", s->name, "authorized",
                                        atomic_load(&s->authorized), "accepted",
                                        (json_int_t)atomic_load(&s->accepted), "rejected",
                                        (json_int_t)atomic_load(&s->rejected), "refused",
                                        (json_int_t)atomic_load(&s->refused)));
    pthread_mutex_unlock(&a->lock);
    return json_pack("{s:b, s:o, s:{s:I, s:I}}", "producers_authenticated", a->ingest_curve,
                     "producers", producers, "refused_connections", "ingest",
                     (json_int_t)atomic_load(&a->refused_ingest), "control",
                     (json_int_t)atomic_load(&a->refused_control));
}
