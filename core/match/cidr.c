/**
 * @file cidr.c
 * @brief IP addresses and CIDR blocks, parsed strictly and without
 * allocating (inet_pton needs a NUL-terminated copy and accepts less).
 */
#include <string.h>

#include "match_int.h"

static bool parse_v4(const char *s, size_t len, uint8_t out[4]) {
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        unsigned v = 0;
        size_t start = i;
        if (part > 0) {
            if (i >= len || s[i] != '.')
                return false;
            start = ++i;
        }
        while (i < len && s[i] >= '0' && s[i] <= '9' && i - start < 3) {
            v = v * 10 + (unsigned)(s[i] - '0');
            i++;
        }
        if (i == start || v > 255)
            return false;
        if (i - start > 1 && s[start] == '0')
            return false; /* leading zeros read as octal elsewhere: refuse */
        out[part] = (uint8_t)v;
    }
    return i == len;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool parse_v6(const char *s, size_t len, uint8_t out[16]) {
    uint16_t words[8];
    int n = 0, gap = -1;
    size_t i = 0;

    if (len >= 2 && s[0] == ':' && s[1] == ':') {
        gap = 0;
        i = 2;
        if (i == len) {
            memset(out, 0, 16);
            return true;
        }
    } else if (len >= 1 && s[0] == ':') {
        return false;
    }
    while (i < len) {
        size_t start = i;
        unsigned v = 0;
        while (i < len && hexval(s[i]) >= 0 && i - start < 4) {
            v = v * 16 + (unsigned)hexval(s[i]);
            i++;
        }
        if (i < len && s[i] == '.') {
            /* an embedded IPv4 tail takes the last two words */
            uint8_t v4[4];
            if (n > 6 || !parse_v4(s + start, len - start, v4))
                return false;
            words[n++] = (uint16_t)(v4[0] << 8 | v4[1]);
            words[n++] = (uint16_t)(v4[2] << 8 | v4[3]);
            i = len;
            break;
        }
        if (i == start || n >= 8)
            return false;
        words[n++] = (uint16_t)v;
        if (i == len)
            break;
        if (s[i] != ':')
            return false;
        i++;
        if (i < len && s[i] == ':') {
            if (gap >= 0)
                return false;
            gap = n;
            i++;
            if (i == len)
                break;
        } else if (i == len) {
            return false; /* trailing single ':' */
        }
    }
    if (gap < 0 && n != 8)
        return false;
    if (gap >= 0 && n > 7)
        return false;
    memset(out, 0, 16);
    int tail = gap < 0 ? 0 : n - gap;
    int head = gap < 0 ? n : gap;
    for (int k = 0; k < head; k++) {
        out[2 * k] = (uint8_t)(words[k] >> 8);
        out[2 * k + 1] = (uint8_t)words[k];
    }
    for (int k = 0; k < tail; k++) {
        int w = 8 - tail + k;
        out[2 * w] = (uint8_t)(words[head + k] >> 8);
        out[2 * w + 1] = (uint8_t)words[head + k];
    }
    return true;
}

static bool parse_addr(const char *s, size_t len, uint8_t addr[16], uint8_t *v6) {
    memset(addr, 0, 16);
    if (memchr(s, ':', len)) {
        *v6 = 1;
        return parse_v6(s, len, addr);
    }
    *v6 = 0;
    return parse_v4(s, len, addr);
}

bool evbus__cidr_parse(const char *s, size_t len, evbus__cidr *out) {
    const char *slash = memchr(s, '/', len);
    size_t alen = slash ? (size_t)(slash - s) : len;
    evbus__cidr c;
    unsigned bits;

    if (!parse_addr(s, alen, c.addr, &c.v6))
        return false;
    bits = c.v6 ? 128 : 32;
    if (slash) {
        size_t i = alen + 1;
        unsigned v = 0;
        if (i >= len || len - i > 3)
            return false;
        for (; i < len; i++) {
            if (s[i] < '0' || s[i] > '9')
                return false;
            v = v * 10 + (unsigned)(s[i] - '0');
        }
        if (v > bits)
            return false;
        bits = v;
    }
    c.bits = (uint8_t)bits;
    /* Clear host bits so that 10.0.0.1/24 means 10.0.0.0/24. */
    for (unsigned b = bits; b < 128; b++)
        c.addr[b / 8] &= (uint8_t) ~(0x80u >> (b % 8));
    *out = c;
    return true;
}

bool evbus__cidr_contains(const evbus__cidr *c, const char *s, size_t len) {
    uint8_t a[16], v6;
    if (len == 0 || len > 45 || !parse_addr(s, len, a, &v6) || v6 != c->v6)
        return false;
    unsigned full = c->bits / 8, rem = c->bits % 8;
    if (memcmp(a, c->addr, full) != 0)
        return false;
    if (rem) {
        uint8_t mask = (uint8_t)(0xFF00u >> rem);
        if ((a[full] & mask) != c->addr[full])
            return false;
    }
    return true;
}
