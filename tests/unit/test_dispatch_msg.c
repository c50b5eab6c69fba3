/* Result messages between the dispatcher and the writer
 * (core/daemon/dispatch_msg.c): a send that a signal interrupts is made
 * again. The writer hands each message back this way; one it gave up on
 * would keep its batch counted in the target's window for ever. zmq_send is
 * wrapped (-Wl,--wrap=zmq_send) so that a test decides how many sends fail
 * with EINTR before the real one runs. */
#include <criterion/criterion.h>
#include <errno.h>
#include <zmq.h>

#include "dispatch_msg.h"

int __real_zmq_send(void *s, const void *buf, size_t len, int flags);
int __wrap_zmq_send(void *s, const void *buf, size_t len, int flags);

static int interrupted_sends; /* sends still to fail with `fail_errno` */
static int fail_errno = EINTR;
static int calls;

int __wrap_zmq_send(void *s, const void *buf, size_t len, int flags) {
    calls++;
    if (interrupted_sends > 0) {
        interrupted_sends--;
        errno = fail_errno;
        return -1;
    }
    return __real_zmq_send(s, buf, len, flags);
}

static void *ctx, *push, *pull;

static void pipe_up(void) {
    ctx = zmq_ctx_new();
    push = zmq_socket(ctx, ZMQ_PUSH);
    pull = zmq_socket(ctx, ZMQ_PULL);
    cr_assert_eq(zmq_bind(pull, "inproc://evbus-test-msg"), 0);
    cr_assert_eq(zmq_connect(push, "inproc://evbus-test-msg"), 0);
}

static void pipe_down(void) {
    zmq_close(push);
    zmq_close(pull);
    zmq_ctx_term(ctx);
}

TestSuite(result_msg, .init = pipe_up, .fini = pipe_down);

Test(result_msg, a_send_interrupted_by_signals_is_made_again) {
    evbus__result_msg *m = evbus__result_msg_new(1);
    cr_assert_not_null(m);
    m->target = 3;
    interrupted_sends = 3;
    cr_assert(evbus__result_msg_send(push, m), "given up after an interrupted send");
    cr_assert_eq(calls, 4);
    evbus__result_msg *got = NULL;
    cr_assert_eq(zmq_recv(pull, &got, sizeof got, 0), (int)sizeof got);
    cr_assert_eq(got, m, "the receiver got the message itself");
    cr_assert_eq(got->target, 3);
    evbus__result_msg_free(got);
}

Test(result_msg, a_send_that_cannot_be_made_leaves_the_message_to_the_caller) {
    evbus__result_msg *m = evbus__result_msg_new(1);
    cr_assert_not_null(m);
    fail_errno = ETERM;
    interrupted_sends = 1;
    cr_assert_not(evbus__result_msg_send(push, m));
    cr_assert_eq(calls, 1, "not tried again when the context is ending");
    evbus__result_msg_free(m); /* still ours: ASan would see a double free otherwise */
}
