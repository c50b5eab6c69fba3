#include "util.h"

#include <stdbool.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

int64_t evbus__now_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t evbus__now_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void random_bytes(void *out, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom((char *)out + got, n - got, 0);
        if (r > 0)
            got += (size_t)r;
    }
}

void evbus__uuid_gen_init(evbus__uuid_gen *g) {
    random_bytes(g, sizeof *g);
}

void evbus__uuid_next(evbus__uuid_gen *g, char out[37]) {
    static const char hex[] = "0123456789abcdef";
    uint64_t c = g->counter++;
    /* hi is a bijection of the counter for a fixed key: ids of one generator
     * differ in hi until the counter wraps. The variant bits overwrite 2 of
     * its 64 bits, leaving 2^62 distinct ids. */
    uint64_t lo = evbus__mix64(g->k0 ^ evbus__mix64(c + 0x9e3779b97f4a7c15ULL));
    uint64_t hi = evbus__mix64(g->k1 + c);
    unsigned char b[16];
    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char)(lo >> (8 * i));
        b[8 + i] = (unsigned char)(hi >> (8 * i));
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 0x0f];
    }
    out[o] = '\0';
}

int evbus__days_in_month(int year, int month) {
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month < 1 || month > 12)
        return 0;
    bool leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    return month == 2 && leap ? 29 : days[month - 1];
}

static void put_digits(char *out, unsigned v, int n) {
    for (int i = n - 1; i >= 0; i--, v /= 10)
        out[i] = (char)('0' + v % 10);
}

void evbus__format_time(int64_t wall_ms, char out[21]) {
    time_t secs = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    /* Written digit by digit: the fields are bounded, and this runs once per
     * drained batch on the ingest path. */
    memcpy(out, "0000-00-00T00:00:00Z", 21);
    put_digits(out, (unsigned)(tm.tm_year + 1900) % 10000, 4);
    put_digits(out + 5, (unsigned)tm.tm_mon + 1, 2);
    put_digits(out + 8, (unsigned)tm.tm_mday, 2);
    put_digits(out + 11, (unsigned)tm.tm_hour, 2);
    put_digits(out + 14, (unsigned)tm.tm_min, 2);
    put_digits(out + 17, (unsigned)tm.tm_sec, 2);
}
