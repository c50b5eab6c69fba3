/**
 * @file test_match_casefold.c
 * @brief equals-ignore-case across scripts: Unicode's simple case folding,
 * characters whose folding changes the UTF-8 length, the exhaustive check
 * of the generated table against UnicodeData.txt, and malformed UTF-8 in
 * events and patterns (a defined answer, never a crash).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "match_int.h"

#ifndef EVBUS_UNICODE_DATA_TXT
#error "EVBUS_UNICODE_DATA_TXT must name Unicode's UnicodeData.txt"
#endif

TestSuite(casefold, .timeout = 120);

static void mark(void *arg, uint32_t rule) {
    ((char *)arg)[rule] = 1;
}

/* Compile `pattern` alone and match the whole event `event` (JSON). */
static bool matches(const char *pattern, const char *event) {
    evbus__match_rule r = {"r", pattern};
    evbus__matcher *m = NULL;
    evbus__match_scratch *s = NULL;
    char err[512];
    cr_assert_eq(evbus__matcher_compile(&r, 1, &m, err, sizeof err), EVBUS_OK, "%s: %s", pattern,
                 err);
    cr_assert_eq(evbus__match_scratch_new(m, &s), EVBUS_OK);
    char hit[1] = {0};
    cr_assert_eq(evbus__matcher_match_json(m, s, event, strlen(event), mark, hit), EVBUS_OK, "%s",
                 event);
    evbus__match_scratch_destroy(&s);
    evbus__matcher_destroy(&m);
    return hit[0];
}

/* The operator around the operand. */
enum { EIC, PREFIX, SUFFIX, AB_EIC };

typedef struct eic_case {
    int op;
    const char *pattern_value, *event_value;
    bool match;
} eic_case;

static void run_cases(const eic_case *c, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char pattern[512], event[512];
        const char *v = c[i].pattern_value;
        switch (c[i].op) {
        case EIC:
            snprintf(pattern, sizeof pattern,
                     "{\"detail\":{\"s\":[{\"equals-ignore-case\":\"%s\"}]}}", v);
            break;
        case PREFIX:
            snprintf(pattern, sizeof pattern,
                     "{\"detail\":{\"s\":[{\"prefix\":{\"equals-ignore-case\":\"%s\"}}]}}", v);
            break;
        case SUFFIX:
            snprintf(pattern, sizeof pattern,
                     "{\"detail\":{\"s\":[{\"suffix\":{\"equals-ignore-case\":\"%s\"}}]}}", v);
            break;
        default:
            snprintf(pattern, sizeof pattern,
                     "{\"detail\":{\"s\":[{\"anything-but\":{\"equals-ignore-case\":\"%s\"}}]}}",
                     v);
        }
        snprintf(event, sizeof event, "{\"detail\":{\"s\":\"%s\"}}", c[i].event_value);
        cr_expect_eq(matches(pattern, event), c[i].match, "%s against %s: expected %s", pattern,
                     event, c[i].match ? "a match" : "no match");
    }
}

/* The pairs EventBridge and quamina match that a fold of a few blocks
 * missed, in both directions. */
Test(casefold, scripts_beyond_latin_greek_cyrillic) {
    static const eic_case c[] = {
        /* fullwidth Latin (3-byte UTF-8) */
        {EIC, "\uFF21\uFF22\uFF23", "\uFF41\uFF42\uFF43", true},
        {EIC, "\uFF41\uFF42\uFF43", "\uFF21\uFF22\uFF23", true},
        {EIC, "\uFF21\uFF22\uFF23", "ABC", false},
        /* DŽ, Dž, dž: capital, titlecase and small are one letter */
        {EIC, "\u01C4", "\u01C4", true},
        {EIC, "\u01C4", "\u01C5", true},
        {EIC, "\u01C4", "\u01C6", true},
        {EIC, "\u01C5", "\u01C4", true},
        {EIC, "\u01C5", "\u01C5", true},
        {EIC, "\u01C5", "\u01C6", true},
        {EIC, "\u01C6", "\u01C4", true},
        {EIC, "\u01C6", "\u01C5", true},
        {EIC, "\u01C6", "\u01C6", true},
        {EIC, "\u01C4", "D\u017D", false}, /* DŽ as two letters is another word */
        /* Georgian: Mtavruli and Mkhedruli (ქართული), Asomtavruli and Nuskhuri */
        {EIC, "\u1CA5\u1C90\u1CA0\u1C97\u1CA3\u1C9A\u1C98",
         "\u10E5\u10D0\u10E0\u10D7\u10E3\u10DA\u10D8", true},
        {EIC, "\u10E5\u10D0\u10E0\u10D7\u10E3\u10DA\u10D8",
         "\u1CA5\u1C90\u1CA0\u1C97\u1CA3\u1C9A\u1C98", true},
        {EIC, "\u10A0", "\u2D00", true},
        /* Armenian (հայերեն) */
        {EIC, "\u0540\u0531\u0545\u0535\u0550\u0535\u0546",
         "\u0570\u0561\u0575\u0565\u0580\u0565\u0576", true},
        {EIC, "\u0570\u0561\u0575", "\u0540\u0531\u0545", true},
        /* Latin Extended Additional (Vietnamese and more) */
        {EIC, "\u1E00\u1EA0\u1EF2", "\u1E01\u1EA1\u1EF3", true},
        {EIC, "Vi\u1EC6t Nam", "VI\u1EC7T NAM", true},
        {EIC, "\u1EA0", "\u1EA3", false},
        /* Greek, final sigma included: σ, ς and Σ are one letter */
        {EIC, "\u039F\u0394\u039F\u03A3", "\u03BF\u03B4\u03BF\u03C2", true},
        {EIC, "\u039F\u0394\u039F\u03A3", "\u03BF\u03B4\u03BF\u03C3", true},
        {EIC, "\u03BF\u03B4\u03BF\u03C2", "\u039F\u0394\u039F\u03A3", true},
        {EIC, "\u03C3", "\u03C2", true},
        {EIC, "\u03C2", "\u03C3", true},
        {EIC, "\u03C3", "\u03C4", false},
        /* Cherokee: small letters fold to the capitals (ᏣᎳᎩ) */
        {EIC, "\u13E3\u13B3\u13A9", "\uABB3\uAB83\uAB79", true},
        {EIC, "\uABB3\uAB83\uAB79", "\u13E3\u13B3\u13A9", true},
        {EIC, "\u13F8", "\u13F0", true},
        /* Deseret (4-byte UTF-8): 𐐷𐐯𐑊𐐬 and its capitals */
        {EIC, "\U00010400", "\U00010428", true},
        {EIC, "\U00010437\U0001042F\U0001044A\U0001042C",
         "\U0001040F\U00010407\U00010422\U00010404", true},
        {EIC, "\U0001040F\U00010407\U00010422\U00010404",
         "\U00010437\U0001042F\U0001044A\U0001042C", true},
        {EIC, "\U00010400", "\U00010401", false},
        /* caseless scripts compare exactly */
        {EIC, "\u65E5\u672C\u8A9E", "\u65E5\u672C\u8A9E", true},
        {EIC, "\u65E5\u672C\u8A9E", "\u65E5\u672C", false},
    };
    run_cases(c, sizeof c / sizeof c[0]);
}

/* Simple folding may change the UTF-8 length; full folding (one character
 * to several) is not done, nor the Turkic dotted and dotless i. */
Test(casefold, foldings_that_change_the_utf8_length) {
    static const eic_case c[] = {
        /* K, the Kelvin sign (3 bytes), is K and k (1 byte) */
        {EIC, "\u212A", "k", true},
        {EIC, "\u212A", "K", true},
        {EIC, "k", "\u212A", true},
        {EIC, "\u212Aelvin", "KELVIN", true},
        /* ſ, the long s (2 bytes), is S and s */
        {EIC, "\u017F", "s", true},
        {EIC, "s", "\u017F", true},
        {EIC, "S", "\u017F", true},
        {EIC, "ma\u017Fs", "MASS", true},
        /* Ⱥ (2 bytes) and ⱥ (3 bytes) */
        {EIC, "\u023A", "\u2C65", true},
        {EIC, "\u2C65", "\u023A", true},
        {EIC, "x\u023Ay\u023E", "X\u2C65Y\u2C66", true},
        /* ẞ, the capital sharp s (3 bytes), is ß (2 bytes) */
        {EIC, "\u1E9E", "\u00DF", true},
        {EIC, "stra\u00DFe", "STRA\u1E9EE", true},
        /* Ω (ohm sign) and Å (angstrom sign) are the letters */
        {EIC, "\u2126", "\u03C9", true},
        {EIC, "\u212B", "\u00E5", true},
        /* no full folding: ß is not SS, ﬁ is not fi, ŉ is not ʼn */
        {EIC, "\u00DF", "SS", false},
        {EIC, "stra\u00DFe", "STRASSE", false},
        {EIC, "\uFB01", "fi", false},
        {EIC, "\u0149", "\u02BCN", false},
        /* no Turkic rules: İ and ı are letters of their own */
        {EIC, "\u0130", "i", false},
        {EIC, "\u0130", "I", false},
        {EIC, "\u0130", "i\u0307", false},
        {EIC, "\u0130", "\u0130", true},
        {EIC, "\u0131", "I", false},
        {EIC, "\u0131", "i", false},
        {EIC, "I", "i", true},
        /* prefixes and suffixes are cut on folded characters */
        {PREFIX, "k", "\u212Aelvin", true},
        {PREFIX, "\u212AEL", "kelvin", true},
        {PREFIX, "\u212AEL", "ke", false},
        {PREFIX, "\u03C3", "\u03C2x", true},
        {PREFIX, "\u1E9E", "\u00DFx", true},
        {PREFIX, "a", "A\u00E9", true},
        {PREFIX, "a\u00E9", "A", false},
        {SUFFIX, "\u2C65", "xyz\u023A", true},
        {SUFFIX, "\u023A", "xyz\u2C65", true},
        {SUFFIX, "\u00E9", "\u00C9", true},
        {SUFFIX, "S", "ma\u017F", true},
        {SUFFIX, "\u00E9", "e", false},
        /* anything-but folds the same way */
        {AB_EIC, "\u01C5", "\u01C6", false},
        {AB_EIC, "\u01C5", "\u01C4", false},
        {AB_EIC, "\u212A", "k", false},
        {AB_EIC, "\u212A", "x", true},
        {AB_EIC, "\u03A3", "\u03C2", false},
    };
    run_cases(c, sizeof c / sizeof c[0]);
}

/* ---- the generated table against Unicode's other data file ---- */

static size_t put_utf8(char *o, uint32_t c) {
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (char)(0xC0 | (c >> 6));
        o[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | (c >> 12));
        o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (c >> 18));
    o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    o[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* Whether code points a and b fold alike. */
static bool same_fold(uint32_t a, uint32_t b) {
    char ua[4], ub[4], fa[8], fb[8];
    size_t la = evbus__fold(ua, put_utf8(ua, a), fa);
    size_t lb = evbus__fold(ub, put_utf8(ub, b), fb);
    return la == lb && !memcmp(fa, fb, la);
}

/* Every simple uppercase, lowercase and titlecase mapping of UnicodeData.txt
 * joins characters that fold alike, except the Turkic pair İ→i and ı→I
 * (CaseFolding.txt keeps those for its T records, which are not applied).
 * A new Unicode version with a new exception fails here, for a person to
 * decide. */
Test(casefold, table_agrees_with_unicodedata) {
    FILE *f = fopen(EVBUS_UNICODE_DATA_TXT, "r");
    cr_assert_not_null(f, "%s: install Debian's unicode-data (scripts/install-deps.sh)",
                       EVBUS_UNICODE_DATA_TXT);
    char line[1024];
    size_t pairs = 0;
    while (fgets(line, sizeof line, f)) {
        char *field[15] = {0};
        char *p = line;
        for (int i = 0; i < 15 && p; i++) {
            field[i] = p;
            p = strchr(p, ';');
            if (p)
                *p++ = '\0';
        }
        if (!field[14])
            continue;
        uint32_t c = (uint32_t)strtoul(field[0], NULL, 16);
        for (int k = 12; k <= 14; k++) {
            if (!*field[k] || *field[k] == '\n')
                continue;
            uint32_t m = (uint32_t)strtoul(field[k], NULL, 16);
            if ((c == 0x130 && m == 'i') || (c == 0x131 && m == 'I'))
                continue;
            pairs++;
            cr_expect(same_fold(c, m), "U+%04X and its case mapping U+%04X fold differently", c, m);
        }
    }
    fclose(f);
    cr_assert_gt(pairs, 2500, "only %zu case mappings read from %s", pairs, EVBUS_UNICODE_DATA_TXT);
    cr_expect(!same_fold(0x130, 'i') && !same_fold(0x131, 'I') && !same_fold(0x131, 'i'));
}

/* Folding twice changes nothing, and the folded length stays within the
 * bound the buffers are sized by, for every scalar value. */
Test(casefold, folding_is_idempotent_and_bounded) {
    for (uint32_t c = 0; c <= 0x10FFFF; c++) {
        if (c >= 0xD800 && c <= 0xDFFF)
            continue;
        char u[4], f1[8], f2[8];
        size_t n = put_utf8(u, c);
        size_t l1 = evbus__fold(u, n, f1);
        size_t l2 = evbus__fold(f1, l1, f2);
        cr_assert_leq(l1, EVBUS__FOLD_LEN_MAX(n), "U+%04X", c);
        cr_assert(l1 == l2 && !memcmp(f1, f2, l1), "U+%04X folds again", c);
    }
}

/* ---- malformed UTF-8: copied as it is, never part of a match ---- */

Test(casefold, malformed_bytes_are_copied_unfolded) {
    static const struct {
        const char *in, *out;
    } c[] = {
        {"A\x80"
         "B",
         "a\x80"
         "b"},            /* a lone continuation byte */
        {"\xC3", "\xC3"}, /* a sequence cut short at the end */
        {"\xC3"
         "A",
         "\xC3"
         "a"},                                    /* ... or by another character */
        {"\xC0\xAF", "\xC0\xAF"},                 /* an overlong '/' */
        {"\xE0\x80\xAF", "\xE0\x80\xAF"},         /* an overlong, three bytes */
        {"\xED\xA0\x80", "\xED\xA0\x80"},         /* a UTF-16 surrogate */
        {"\xF4\x90\x80\x80", "\xF4\x90\x80\x80"}, /* past U+10FFFF */
        {"\xF0\x90\x90", "\xF0\x90\x90"},         /* Deseret cut short */
        {"\xFF\xFE"
         "ABCDEFGHIJ",
         "\xFF\xFE"
         "abcdefghij"},
        {"\xC3\x89\xFF\xE2\x84\xAA", "\xC3\xA9\xFF"
                                     "k"}, /* É, a bad byte, K */
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char out[64];
        size_t n = evbus__fold(c[i].in, strlen(c[i].in), out);
        cr_expect(n == strlen(c[i].out) && !memcmp(out, c[i].out, n), "case %zu", i);
    }
}

/* Envelope strings are taken as they are, malformed or not: the answer is
 * the one the well-formed part gives. */
Test(casefold, malformed_envelope_strings_get_a_defined_answer) {
    evbus__match_rule r[] = {
        {"eic", "{\"source\":[{\"equals-ignore-case\":\"abc\"}]}"},
        {"prefix", "{\"source\":[{\"prefix\":{\"equals-ignore-case\":\"abc\"}}]}"},
        {"suffix", "{\"source\":[{\"suffix\":{\"equals-ignore-case\":\"xyz\"}}]}"},
        {"not", "{\"source\":[{\"anything-but\":{\"equals-ignore-case\":\"abc\"}}]}"},
        {"kelvin", "{\"source\":[{\"prefix\":{\"equals-ignore-case\":\"\u212A\"}}]}"},
    };
    static const struct {
        const char *source;
        char want[5];
    } c[] = {
        {"ABC", {1, 1, 0, 0, 0}},
        {"ABC\xFF", {0, 1, 0, 1, 0}},
        {"\xC3XYZ", {0, 0, 1, 1, 0}},
        {"\xFF", {0, 0, 0, 1, 0}},
        {"\xE2\x84", {0, 0, 0, 1, 0}},         /* the Kelvin sign cut short */
        {"\xE2\x84\xAA\x80", {0, 0, 0, 1, 1}}, /* K, then a stray byte */
        {"", {0, 0, 0, 1, 0}},
    };
    evbus__matcher *m = NULL;
    evbus__match_scratch *s = NULL;
    char err[256];
    cr_assert_eq(evbus__matcher_compile(r, 5, &m, err, sizeof err), EVBUS_OK, "%s", err);
    cr_assert_eq(evbus__match_scratch_new(m, &s), EVBUS_OK);
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        evbus__match_event ev = {.source = c[i].source};
        char hit[5] = {0};
        cr_assert_eq(evbus__matcher_match(m, s, &ev, mark, hit), EVBUS_OK);
        for (int k = 0; k < 5; k++)
            cr_expect_eq(hit[k], c[i].want[k], "source %zu, rule %s", i, r[k].name);
    }
    evbus__match_scratch_destroy(&s);
    evbus__matcher_destroy(&m);
}

/* Patterns and JSON events are validated: malformed UTF-8 is refused. */
Test(casefold, malformed_patterns_and_json_events_are_refused) {
    static const char *bad[] = {
        "{\"s\":[{\"equals-ignore-case\":\"\xC3\"}]}",
        "{\"s\":[{\"equals-ignore-case\":\"a\xFF\"}]}",
        "{\"s\":[{\"prefix\":{\"equals-ignore-case\":\"\xED\xA0\x80\"}}]}",
        "{\"s\":[{\"equals-ignore-case\":\"\\ud800\"}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        evbus__match_rule r = {"bad", bad[i]};
        evbus__matcher *m = NULL;
        char err[256] = "";
        cr_expect_eq(evbus__matcher_compile(&r, 1, &m, err, sizeof err), EVBUS_ECONFIG,
                     "pattern %zu", i);
        cr_expect(strstr(err, "rule \"bad\"") != NULL, "%s", err);
        evbus__matcher_destroy(&m);
    }
    evbus__match_rule r = {"r", "{\"detail\":{\"s\":[{\"equals-ignore-case\":\"a\"}]}}"};
    evbus__matcher *m = NULL;
    evbus__match_scratch *s = NULL;
    cr_assert_eq(evbus__matcher_compile(&r, 1, &m, NULL, 0), EVBUS_OK);
    cr_assert_eq(evbus__match_scratch_new(m, &s), EVBUS_OK);
    static const char *events[] = {
        "{\"detail\":{\"s\":\"A\xFF\"}}",
        "{\"detail\":{\"s\":\"\xC3\"}}",
        "{\"detail\":{\"s\":\"\\udc00\"}}",
    };
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        char hit[1] = {0};
        cr_expect_eq(evbus__matcher_match_json(m, s, events[i], strlen(events[i]), mark, hit),
                     EVBUS_EPROTO, "event %zu", i);
        cr_expect_eq(hit[0], 0);
    }
    evbus__match_scratch_destroy(&s);
    evbus__matcher_destroy(&m);
}

/* The longest string folded, made of characters that grow when folded
 * (Ⱥ, 2 bytes, to ⱥ, 3): the folding buffer holds it. */
Test(casefold, longest_string_that_grows) {
    size_t chars = EVBUS_MATCH_STRING_MAX / 2;
    size_t cap = chars * 2 + 64;
    char *event = malloc(cap);
    cr_assert_not_null(event);
    size_t n = (size_t)snprintf(event, cap, "{\"source\":\"");
    for (size_t i = 0; i < chars; i++)
        n += put_utf8(event + n, 0x23A);
    n += (size_t)snprintf(event + n, cap - n, "\"}");
    evbus__match_rule r[] = {
        {"prefix", "{\"source\":[{\"prefix\":{\"equals-ignore-case\":\"\u2C65\u2C65\"}}]}"},
        {"suffix", "{\"source\":[{\"suffix\":{\"equals-ignore-case\":\"\u023A\u2C65\"}}]}"},
    };
    evbus__matcher *m = NULL;
    evbus__match_scratch *s = NULL;
    cr_assert_eq(evbus__matcher_compile(r, 2, &m, NULL, 0), EVBUS_OK);
    cr_assert_eq(evbus__match_scratch_new(m, &s), EVBUS_OK);
    char hit[2] = {0};
    cr_assert_eq(evbus__matcher_match_json(m, s, event, n, mark, hit), EVBUS_OK);
    cr_expect(hit[0] && hit[1]);
    evbus__match_scratch_destroy(&s);
    evbus__matcher_destroy(&m);
    free(event);
}
