/* Small helpers shared by the client library, the daemon and the CLI. */
#ifndef EVBUS_UTIL_H
#define EVBUS_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Milliseconds on the monotonic clock, for deadlines. */
int64_t evbus__now_mono_ms(void);
/* Milliseconds since the Unix epoch, for timestamps that are stored. */
int64_t evbus__now_wall_ms(void);

/* Generates version 4 UUIDs (36 characters and a NUL) without a system call
 * per id: a 128-bit key drawn from getrandom() once, and a counter run through
 * a bijective mix, so that one generator never repeats itself and two
 * generators collide only with probability ~2^-122. Belongs to one thread; do
 * not share it across fork(). */
typedef struct evbus__uuid_gen {
    uint64_t k0, k1, counter;
} evbus__uuid_gen;

void evbus__uuid_gen_init(evbus__uuid_gen *g);
void evbus__uuid_next(evbus__uuid_gen *g, char out[37]);

/* Formats epoch milliseconds as RFC 3339 UTC with seconds ("...T17:44:20Z"),
 * as Amazon EventBridge writes event times, into out[21]. */
void evbus__format_time(int64_t wall_ms, char out[21]);

/* Days in `month` (1-12) of the proleptic Gregorian `year`: 29 in February
 * of a leap year (divisible by 4, and by 400 if by 100). 0 for a month out of
 * range. For checking dates written by people (2026-02-31 is no day). */
int evbus__days_in_month(int year, int month);

/* A bijective 64-bit mix (the splitmix64 finaliser): for hashing and for
 * turning a counter into well-spread bits. */
static inline uint64_t evbus__mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* Big-endian 64-bit keys sort numerically in LMDB's default byte order. */
static inline void evbus__put_be64(unsigned char *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}
static inline uint64_t evbus__get_be64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

#endif
