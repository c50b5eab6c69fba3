/* evbusd under a service manager: the systemd unit's ExecReload sends
 * SIGHUP, which must not stop the router. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "evbus/evbus.h"
#include "harness.h"

static harness h;

static void stop(void) {
    harness_cleanup(&h);
}

TestSuite(service, .fini = stop, .timeout = 60);

Test(service, sighup_keeps_evbusd_running_and_accepting) {
    harness_init(&h, NULL);
    cr_assert(harness_start(&h));
    cr_assert_eq(kill(h.pid, SIGHUP), 0);

    /* A publish after the signal is answered: it reaches the same process,
     * since a dead daemon's socket would leave the client timing out. */
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.timeout_ms = 10000;
    evbus_client_t *c = NULL;
    cr_assert_eq(evbus_client_new(h.endpoint, &o, &c), EVBUS_OK);
    evbus_event e = {.source = "com.example.svc", .detail_type = "Reloaded", .detail = "{}"};
    evbus_ack ack;
    evbus_err rc = evbus_publish(c, &e, 1, &ack);
    evbus_client_destroy(&c);
    cr_assert_eq(rc, EVBUS_OK, "%s", evbus_strerror(rc));
    cr_assert_eq(ack.status, EVBUS_ACK_ACCEPTED);
    cr_assert_eq(waitpid(h.pid, NULL, WNOHANG), 0, "evbusd exited after SIGHUP");
    cr_assert_eq(harness_stop(&h), 0);
}
