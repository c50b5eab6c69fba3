/* A slow disk for tests, preloaded into evbusd (LD_PRELOAD): every
 * fdatasync() and fsync() first waits EVBUS_TEST_SYNC_DELAY_MS milliseconds,
 * so that each commit of the store takes at least that long. Tests use it to
 * see what the delivery thread does while the writer's commits are slow,
 * without a slow device. */
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static void wait_a_while(void) {
    const char *v = getenv("EVBUS_TEST_SYNC_DELAY_MS");
    long ms = v ? strtol(v, NULL, 10) : 0;
    if (ms <= 0)
        return;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Exported despite the project's hidden default: they must interpose. */
#define INTERPOSE __attribute__((visibility("default")))

INTERPOSE int fdatasync(int fd) {
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    wait_a_while();
    return real ? real(fd) : -1;
}

INTERPOSE int fsync(int fd) {
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    wait_a_while();
    return real ? real(fd) : -1;
}
