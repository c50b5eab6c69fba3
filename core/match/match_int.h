/**
 * @file match_int.h
 * @brief Internals shared by the matcher's files: the compiled layout and the
 * small value helpers (numbers, CIDR, wildcards, case folding, JSON scanning).
 *
 * The compiled matcher is a set of flat arrays indexed by 32-bit ids, so that
 * matching touches few cache lines and a matcher is freed with a few calls:
 *
 *  - nodes: one per distinct field path named by any pattern (a trie over
 *    keys; children found through one hash of (parent, key)).
 *  - predicates: one per distinct (field, operator, operand) across all rules.
 *    Exact values, equals-ignore-case, prefixes and suffixes are found by
 *    hashing the event value (a prefix by hashing each distinct prefix length
 *    the field has); numeric ranges through an interval tree per field
 *    (numeric_index.c); the others (cidr, wildcard, anything-but, exists)
 *    are tried one by one on the field.
 *  - conditions: one per distinct (field, set of predicates) — one field of
 *    one pattern. A predicate that fires satisfies its conditions.
 *  - conjunctions: a rule after expanding $or; an AND of conditions plus
 *    fields that must be absent (exists:false). Each conjunction hangs off one
 *    "anchor" condition, the one least likely to be satisfied; it is checked
 *    only when its anchor fired. This keeps the cost proportional to what the
 *    event satisfies, not to the number of rules.
 */
#ifndef EVBUS_MATCH_INT_H
#define EVBUS_MATCH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "match.h"

#define NONE32 UINT32_MAX

/* ---- numbers (numeric.c) ---- */

/** EventBridge's documented range of numeric operators: [-5.0e9, 5.0e9]. */
#define EVBUS__NUM_RANGE 5.0e9

typedef struct evbus__num {
    bool exact;    /* the text is its double's shortest decimal: compared by
                      value (`key`); otherwise compared as text */
    bool in_range; /* exact and within EVBUS__NUM_RANGE: numeric ranges apply */
    int64_t key;   /* the double as an integer of the same order (-0 is 0) */
    double d;      /* the nearest double (for messages); NaN past 17 digits */
} evbus__num;

/** Parse JSON number text (validated or not: returns false if the grammar
 *  is wrong). Does not allocate. */
bool evbus__num_parse(const char *s, size_t len, evbus__num *out);

/** A finite double as an int64 that orders as the doubles do, -0 as 0:
 *  comparisons and hashing of numbers are integer ones, and the next
 *  double up is key + 1. */
int64_t evbus__num_key(double d);

/* ---- IP addresses (cidr.c) ---- */

typedef struct evbus__cidr {
    uint8_t addr[16]; /* IPv4 in the first 4 bytes */
    uint8_t v6;       /* 1 for IPv6 */
    uint8_t bits;     /* prefix length */
} evbus__cidr;

/** Parse "a.b.c.d/n", "v6/n" (or an address alone: a host route). */
bool evbus__cidr_parse(const char *s, size_t len, evbus__cidr *out);
/** Whether the address text `s` lies inside `c`. */
bool evbus__cidr_contains(const evbus__cidr *c, const char *s, size_t len);

/* ---- wildcards (wildcard.c) ---- */

/** Validate a wildcard pattern (EventBridge's: `*` any run, `\*` a star,
 *  `\\` a backslash, no other escape, no `**`). Returns NULL or a reason. */
const char *evbus__wildcard_check(const char *pat, size_t len);
/** Match `s` against a validated wildcard pattern. Does not allocate. */
bool evbus__wildcard_match(const char *pat, size_t plen, const char *s, size_t slen);

/* ---- case folding (fold.c) ---- */

/** The most bytes folding `n` bytes can give: a 2-byte character may fold
 *  to a 3-byte one (Ⱥ to ⱥ), nothing grows more (gen_casefold.c checks). */
#define EVBUS__FOLD_LEN_MAX(n) ((n) + (n) / 2)

/** Fold `s` (UTF-8; malformed bytes are copied unfolded) with Unicode's
 *  simple case folding into `out`, which must hold EVBUS__FOLD_LEN_MAX(len)
 *  bytes. Returns the folded length. Does not allocate. */
size_t evbus__fold(const char *s, size_t len, char *out);

/* ---- hashing ---- */

/* The one hash of the matcher: keys and values are short (tens of bytes),
 * so a word-at-a-time multiply-mix beats byte-wise hashes; inline because it
 * runs for every key the matcher walks. */
static inline uint64_t evbus__hash_mix(uint64_t h) {
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ULL;
    h ^= h >> 32;
    return h;
}

static inline uint64_t evbus__hash(uint64_t seed, const void *p, size_t len) {
    const unsigned char *b = (const unsigned char *)p;
    uint64_t h = seed ^ (0x9e3779b97f4a7c15ULL * (len + 1));
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 29;
        b += 8;
        len -= 8;
    }
    if (len) {
        /* The tail without a variable-length memcpy (a libc call): two
         * overlapping 4-byte loads, or three single bytes. Lookups compare
         * keys in full after a hash hit, so this only shapes the spread. */
        uint64_t w;
        if (len >= 4) {
            uint32_t lo, hi;
            memcpy(&lo, b, 4);
            memcpy(&hi, b + len - 4, 4);
            w = ((uint64_t)hi << 32) | lo;
        } else {
            w = ((uint64_t)b[0] << 16) | ((uint64_t)b[len >> 1] << 8) | b[len - 1];
        }
        h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
        h ^= h >> 29;
    }
    return evbus__hash_mix(h);
}

/* ---- JSON scanning (json_scan.c) ---- */

typedef struct evbus__jscan {
    const unsigned char *p;   /* next byte */
    const unsigned char *beg; /* start of text, for offsets */
    const unsigned char *end;
    const char *why; /* set on error */
    size_t err_off;
} evbus__jscan;

/** Skip whitespace; returns the next byte or 0 at the end. */
static inline unsigned char evbus__jscan_ws(evbus__jscan *j) {
    while (j->p < j->end) {
        unsigned char c = *j->p;
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t')
            return c;
        j->p++;
    }
    return 0;
}

bool evbus__jscan_fail(evbus__jscan *j, const char *why);
/** At '"': validate the string, leave p after the closing quote. The content
 *  is [*s, *s + *len) raw (escapes not decoded); *esc says whether any. */
bool evbus__jscan_string(evbus__jscan *j, const char **s, size_t *len, bool *esc);
/** Decode a validated raw string (with escapes) into out (cap bytes);
 *  returns the decoded length, or SIZE_MAX if it does not fit. */
size_t evbus__json_unescape(const char *s, size_t len, char *out, size_t cap);
/** At a number: validate it, leave p after it. */
bool evbus__jscan_number(evbus__jscan *j, const char **s, size_t *len);
/** At any value: validate and skip it (iteratively; depth counts from
 *  `depth`). */
bool evbus__jscan_skip(evbus__jscan *j, int depth);
/** At any value of text the caller knows is valid JSON (checked earlier,
 *  e.g. by evbus__json_check_object): skip it without validating, counting
 *  brackets outside strings sixteen bytes at a time. On text that is not
 *  valid it never reads past `end`, but may stop anywhere; it fails only
 *  when the text ends inside the value. */
bool evbus__jscan_skip_valid(evbus__jscan *j);

/* ---- the compiled matcher ---- */

enum {
    /* hashed kinds: a value-table entry (field, kind, bytes) -> predicate */
    K_EXACT = 1, /* string bytes */
    K_NUM,       /* 'n' + number key, or the text of an inexact number */
    K_LIT,       /* "t", "f", "n" */
    K_EIC,       /* folded string */
    K_PREFIX,
    K_PREFIX_EIC, /* folded */
    K_SUFFIX,
    K_SUFFIX_EIC, /* folded */
    /* scanned kinds: tried one by one on each value of the field */
    K_EXISTS,
    K_NUMERIC,
    K_CIDR,
    K_WILDCARD,
    K_AB_VALUES, /* anything-but a set of exact strings / numbers */
    K_AB_EIC,    /* anything-but equals-ignore-case (folded set) */
    K_AB_PREFIX,
    K_AB_SUFFIX,
    K_AB_WILDCARD, /* anything-but any of a set of wildcards */
    K_ABSENT       /* exists:false: not a predicate, a conjunction's check */
};

/** The value as the scanner hands it to a field. */
enum { V_STR, V_NUM, V_TRUE, V_FALSE, V_NULL };

typedef struct evbus__val {
    int type;
    const char *s; /* decoded string, or the number's text */
    size_t len;
} evbus__val;

typedef struct mnode {
    uint32_t field;        /* index in fields, or NONE32 if no predicates */
    uint32_t has_children; /* some pattern names a key below this node */
    uint32_t depth;
    uint32_t parent;
    uint32_t key_off, key_len; /* in strs; the key leading here */
} mnode;

typedef struct mfield {
    uint32_t node;
    uint32_t flags;              /* 1 << K_* of hashed kinds present */
    uint32_t len_off[4];         /* prefix, prefix-eic, suffix, suffix-eic: */
    uint32_t len_cnt[4];         /*   distinct operand lengths in `lens` */
    uint32_t slow_off, slow_cnt; /* scanned predicates in `slow` */
    uint32_t num_root;           /* numeric ranges: tree in `num`, or NONE32 */
} mfield;

/* ---- numeric ranges (numeric_index.c) ---- */

typedef struct mnum { /* a range as a closed interval of number keys */
    int64_t a, b;
    uint32_t pred;
} mnum;

typedef struct mntree {
    int64_t center;
    uint32_t left, right; /* subtrees, or NONE32 */
    uint32_t off, cnt;    /* ranges holding center: lo[off..] by a ascending,
                             hi[off..] by b descending */
} mntree;

typedef struct evbus__numidx {
    mntree *nodes;
    size_t n_nodes, cap_nodes;
    mnum *lo, *hi;
    uint32_t n;
} evbus__numidx;

/** Add one field's ranges; *root receives its tree (NONE32 if n is 0). */
bool evbus__numidx_add(evbus__numidx *x, const mnum *items, size_t n, uint32_t *root);
void evbus__numidx_free(evbus__numidx *x);

typedef struct mpred {
    uint32_t kind;
    uint32_t cond_off, cond_cnt; /* conditions this predicate satisfies */
    /* operand for scanned kinds */
    uint32_t a_off, a_cnt; /* AB sets: items in `items`; wildcard/
                              prefix/suffix: bytes in strs */
    int64_t lo, hi;        /* numeric: bounds as number keys */
    uint8_t lo_incl, hi_incl, has_lo, has_hi;
    evbus__cidr cidr;
} mpred;

typedef struct mitem { /* one element of an anything-but set */
    uint32_t type;     /* V_STR or V_NUM (AB sets); wildcard text */
    uint32_t off, len; /* string in strs */
    evbus__num num;
} mitem;

typedef struct mcond {
    uint32_t node;
    uint32_t conj_off, conj_cnt; /* conjunctions anchored here */
    uint32_t desc_off, desc_len; /* "detail.x: wanted [...]" text in strs */
} mcond;

typedef struct mconj {
    uint32_t rule;
    uint32_t pos_off, pos_cnt; /* all its conditions, in `ids` */
    uint32_t neg_off, neg_cnt; /* nodes that must hold no value, in `ids` */
    uint32_t anchor;           /* condition id, or NONE32 (only negatives) */
} mconj;

typedef struct hent { /* value table / child table entry */
    uint64_t hash;
    uint32_t a;        /* value: field; child: parent node */
    uint32_t kind;     /* value: K_*; child: 0 */
    uint32_t off, len; /* key bytes in strs */
    uint32_t target;   /* predicate or child node */
} hent;

struct evbus__matcher {
    uint32_t n_rules;
    mnode *nodes;
    uint32_t n_nodes;
    mfield *fields;
    uint32_t n_fields;
    mpred *preds;
    uint32_t n_preds;
    mcond *conds;
    uint32_t n_conds;
    mconj *conjs;
    uint32_t n_conjs;
    uint32_t *ids; /* shared pool: condition lists, conj lists, ... */
    uint32_t n_ids;
    uint16_t *lens; /* prefix/suffix lengths per field, ascending */
    uint32_t n_lens;
    uint32_t *slow; /* predicate ids of scanned kinds per field */
    uint32_t n_slow;
    mitem *items;
    uint32_t n_items;
    char *strs; /* all key and operand bytes */
    size_t n_strs;
    hent *vtab; /* value table, open addressing */
    uint32_t vmask;
    hent *ctab; /* child table */
    uint32_t cmask;
    evbus__numidx num; /* numeric ranges of every field */
    uint32_t *always;  /* conjunctions with no anchor: checked every event */
    uint32_t n_always;
    uint32_t *rule_conj_off; /* per rule: its conjunctions, for explain */
    uint32_t *rule_conj_cnt;
    size_t memory;
};

struct evbus__match_scratch {
    const evbus__matcher *m;
    uint32_t epoch;
    uint32_t *cond_stamp; /* == epoch: condition satisfied this event */
    uint32_t *node_stamp; /* == epoch: node held a value this event */
    uint32_t *rule_stamp; /* == epoch: rule reported this event */
    uint32_t *fired;      /* anchors that fired, in firing order */
    uint32_t n_fired;
    char *buf; /* unescaping and folding; EVBUS_MATCH_STRING_MAX*2 */
    const char *why;
    size_t err_off;
    /* Array consistency: which array elements satisfied each condition.
     * A condition with a witness outside any array is "free"; the others
     * keep a list of witnesses, each with the (array, index) pairs of the
     * arrays around the value. */
    uint32_t *cond_free;   /* == epoch: some witness is outside arrays */
    uint32_t *cond_wstamp; /* == epoch: cond_whead is valid */
    uint32_t *cond_whead;  /* first witness, NONE32-terminated list */
    struct mwit *wit;
    uint32_t n_wit;
    uint32_t *trail; /* (array id, index) pairs of all witnesses */
    uint32_t n_trail;
    bool overflow; /* pools full: arrays are flattened this event */
};

typedef struct mwit {
    uint32_t next;
    uint32_t trail_off, trail_len; /* pairs in scratch->trail */
} mwit;

#define EVBUS__WIT_MAX   16384
#define EVBUS__TRAIL_MAX 65536 /* pairs */

#endif /* EVBUS_MATCH_INT_H */
