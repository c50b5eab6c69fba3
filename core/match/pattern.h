/**
 * @file pattern.h
 * @brief A parsed pattern, between pattern_parse.c and pattern_compile.c:
 * the rule in disjunctive normal form, each term one field and the OR of its
 * operators. Everything lives in one arena, freed once compiled.
 */
#ifndef EVBUS_MATCH_PATTERN_H
#define EVBUS_MATCH_PATTERN_H

#include "match_int.h"

#include "common/arena.h"

typedef struct pitem {
    uint32_t type; /* V_STR or V_NUM */
    const char *s; /* string operand, or number text */
    size_t len;
    evbus__num num;
} pitem;

typedef struct pmatch {
    uint32_t kind; /* K_* */
    const char *s; /* string operand (folded for *_EIC kinds) */
    size_t len;
    evbus__num num; /* K_NUM */
    int64_t lo, hi; /* K_NUMERIC */
    uint8_t lo_incl, hi_incl, has_lo, has_hi;
    evbus__cidr cidr; /* K_CIDR */
    pitem *items;     /* anything-but sets, wildcard lists */
    size_t n_items;
} pmatch;

typedef struct pterm {
    const char **keys; /* path from the event's root */
    size_t *key_lens;
    size_t n_keys;
    pmatch *m; /* OR-ed */
    size_t n_m;
    bool absent;      /* exists:false: the field must hold no value */
    const char *desc; /* "detail.state: wanted [\"running\"]" */
} pterm;

typedef struct pconj {
    pterm **t;
    size_t n;
} pconj;

typedef struct pdnf {
    pconj *c;
    size_t n;
} pdnf;

/**
 * Parse one rule's pattern into `out` (allocated in `a`).
 * On failure writes `rule "NAME": pattern.PATH: WHY` into err and returns
 * EVBUS_ECONFIG (or EVBUS_ENOMEM).
 */
evbus_err evbus__pattern_parse(evbus__arena *a, const char *name, const char *json,
                               size_t pattern_max, pdnf *out, char *err, size_t errlen);

#endif /* EVBUS_MATCH_PATTERN_H */
