/**
 * @file match.h
 * @brief The routing-rule matcher: EventBridge event patterns compiled into
 * one structure that matches an event in time proportional to the event.
 *
 * A matcher is built once from all rules (evbus__matcher_compile) and is then
 * immutable: any number of threads may match against it at once, each with
 * its own scratch (evbus__match_scratch_new). Matching never allocates.
 *
 * @section semantics Semantics (EventBridge's)
 *  - A pattern is a JSON object. Its keys name event fields; nested objects
 *    address nested fields; the leaves are non-empty arrays of values and
 *    operators, OR-ed. Fields are AND-ed. `$or` (an array of at least two
 *    objects) ORs sub-patterns at any level.
 *  - Arrays in the event are flattened: a field matches when any element
 *    matches. As in aws/event-ruler's rulesForJSONEvent, a rule never
 *    matches with two of its fields taken from different elements of the
 *    same array ({"items":{"sku":["a"],"qty":[2]}} needs one item with both).
 *    Past 16384 matching values inside arrays in one event, or a search of
 *    more than 4096 steps, the check is dropped for that event (plain
 *    flattening).
 *  - Keys are compared whole: {"a.b": ...} and {"a": {"b": ...}} are
 *    different fields (event-ruler joins keys with dots and conflates them).
 *  - Operators: exact string / number / true / false / null, "" (empty
 *    string), prefix, suffix and their equals-ignore-case forms,
 *    equals-ignore-case, anything-but (a value, a list of strings or of
 *    numbers, or prefix / suffix / equals-ignore-case / wildcard), numeric
 *    (=, <, <=, >, >= and ranges), exists, cidr (IPv4 and IPv6), wildcard.
 *  - Numbers compare as IEEE 754 binary64 doubles, exactly, in exact
 *    values, anything-but and numeric: [0.1] matches 0.1, 0.10 and 1e-1,
 *    not 0.1000001; 300 matches 3.0e2. So does aws/event-ruler, EventBridge's
 *    matching library, since 1.8.0 (September 2024, ComparableNumber, PR
 *    #188; 1.7.4 had already stopped rounding, issue #163), and quamina. Up
 *    to 1.7.3 event-ruler rounded to six decimals; Amazon's documentation
 *    still gives "15 digits of precision, or six digits to the right of the
 *    decimal point", which exact comparison honours: it is what is
 *    promised, and maintainers called the rounding a bug against it.
 *  - A number is compared by value when its text names its own double:
 *    printed with as many significant digits, that double gives the text
 *    back (every number of up to 15 significant digits; what JavaScript,
 *    Java, Python and Go print; C's %.17g). Others, which stand for a
 *    double they are not (9007199254740993, 1234567890123456789,
 *    0.30000000000000003, 1e-400), are compared as text in exact values,
 *    hold no numeric operator, and are none of an anything-but's numbers.
 *    In a pattern, numeric and anything-but refuse them, and a real one is
 *    refused everywhere (the pattern's JSON parser would keep only its
 *    double). event-ruler draws the line at Java's shortest decimal, so
 *    0.10000000000000001 (C's %.17g of 0.1, as jansson prints it) is text
 *    there and 0.1 here.
 *  - Numeric operators hold numbers in [-5.0e9, 5.0e9], the range Amazon's
 *    documentation gives; a bound outside it is refused and a number
 *    outside it matches no range (event-ruler takes the whole double range
 *    since 1.8.0).
 *  - exists:true matches a field holding a scalar (null included) or an array
 *    holding one; an object or an empty array is not a value.
 *    exists:false matches when there is none. Every other operator needs a
 *    value: a missing field matches nothing but exists:false.
 *  - anything-but matches any value, of any type, that is not excluded;
 *    its string forms (prefix, suffix, ...) let numbers, booleans and null
 *    through.
 *  - equals-ignore-case (alone, in prefix, suffix and anything-but) compares
 *    both sides after Unicode's simple case folding, code point by code
 *    point: the C and S records of CaseFolding.txt, generated at build time
 *    from the build machine's Unicode data (Debian's unicode-data, 15.0 on
 *    Debian 12). Every script with case is folded (fullwidth ＡＢＣ is ａｂｃ;
 *    Ǆ, ǅ and ǆ are one letter; Georgian, Armenian, Cherokee, Deseret...),
 *    and all the forms of a letter are equal: σ, ς and Σ; k, K and K (Kelvin
 *    sign); s, S and ſ; ß and ẞ. Not done: full folding, which makes one
 *    character several (ß is not SS, ﬁ is not fi, İ is not i̇), and the
 *    Turkic rules (İ and ı are letters of their own). Bytes that are not
 *    well-formed UTF-8 (possible only in envelope strings given to
 *    evbus__matcher_match) are compared as they are, unfolded.
 *    How this relates to EventBridge's own matcher, aws/event-ruler (its
 *    EqualsIgnoreCaseParser, 2026): it lets each UTF-16 unit of the operand
 *    match that unit's Java toLowerCase or toUpperCase, which is not
 *    symmetric (operand σ does not match ς there, operand ſ matches S but
 *    not s, operand ǅ does not match ǅ), does full mappings (operand ß
 *    matches SS) and breaks on characters outside the BMP (a surrogate
 *    half becomes '?'). Simple folding matches every single-character pair
 *    that it matches but one, operand ı and event I, and adds the pairs its
 *    asymmetry drops; quamina (CaseFolding.txt's C records, one alternative
 *    per character) matches a subset of what simple folding matches.
 *
 * @section cost Cost
 *  - Matching reads the event once. Keys no pattern names are skipped
 *    (validated, not decoded). Exact values, equals-ignore-case, prefixes
 *    and suffixes cost one hash probe per value (per distinct operand length
 *    for prefixes and suffixes), however many rules use them. Numeric
 *    ranges cost O(log n + ranges that hold the value) per number (an
 *    interval tree per field). cidr, wildcard, anything-but and exists are
 *    tried one by one per distinct operand on the field: thousands of
 *    different wildcards on one field cost thousands of tries per value.
 *  - Identical conditions in different rules are stored and tested once;
 *    each rule is checked only when its most selective condition held.
 *
 * @section limits Limits (EventBridge's where it has one)
 *  - A pattern is at most EVBUS_MATCH_PATTERN_MAX characters (EventBridge's
 *    default quota, 2048; the quota can be raised to 4096: use
 *    evbus__matcher_compile_opts to do the same).
 *  - A rule expands ($or, and exists:false OR-ed with values) into at most
 *    EVBUS_MATCH_COMBINATIONS_MAX conjunctions (ours).
 *  - Events nest at most EVBUS_MATCH_DEPTH_MAX levels; strings that must be
 *    unescaped or case-folded are at most EVBUS_MATCH_STRING_MAX bytes.
 */
#ifndef EVBUS_MATCH_H
#define EVBUS_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evbus/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EVBUS_MATCH_PATTERN_MAX      2048
#define EVBUS_MATCH_COMBINATIONS_MAX 1024
#define EVBUS_MATCH_DEPTH_MAX        128
#define EVBUS_MATCH_STRING_MAX       (256 * 1024)

/** The compiled rules. Immutable once built; share it between threads. */
typedef struct evbus__matcher evbus__matcher;

/** Per-thread working memory for matching; sized for one matcher. */
typedef struct evbus__match_scratch evbus__match_scratch;

/** One rule: a name (for error messages) and its pattern, JSON text. */
typedef struct evbus__match_rule {
    const char *name;
    const char *pattern_json;
} evbus__match_rule;

/** Compile options; zero-initialised means the defaults. */
typedef struct evbus__match_opts {
    /** Longest pattern in characters; 0 means EVBUS_MATCH_PATTERN_MAX. */
    size_t pattern_max;
    /** If not NULL, receives the index of the refused rule when compiling
     *  fails with EVBUS_ECONFIG (so that a caller can point at its source). */
    size_t *failed_rule;
} evbus__match_opts;

/**
 * @brief The event as the router holds it: envelope fields plus the detail.
 *
 * Envelope strings are NUL-terminated UTF-8 taken as they are (no JSON
 * escapes); NULL means the field is absent. `detail` is JSON text (any JSON
 * value, normally an object) of `detail_len` bytes, not NUL-terminated;
 * NULL means no detail.
 *
 * `detail_checked` says the detail is already known to be valid JSON (evbusd
 * checks every detail with evbus__json_check_object before routing it): the
 * parts no pattern names are then skipped by counting brackets, without
 * validating them, and a detail no pattern looks into is not read at all.
 * If it is set on text that is not valid JSON, matching still never reads
 * outside the text, but its answer is unspecified.
 */
typedef struct evbus__match_event {
    const char *version;
    const char *id;
    const char *source;
    const char *detail_type;
    const char *time;
    const char *region;
    const char *account;
    const char *const *resources;
    size_t n_resources;
    const char *detail;
    size_t detail_len;
    bool detail_checked;
} evbus__match_event;

/**
 * @brief Called once for each rule that matches the event, in no particular
 * order. `rule` is the index of the rule in the array given to compile.
 */
typedef void (*evbus__match_cb)(void *arg, uint32_t rule);

/**
 * @brief Compile `n` rules into one matcher.
 *
 * @param[in] rules  the rules; their strings are copied, the caller keeps them.
 * @param[in] n      how many; 0 is allowed (the matcher matches nothing).
 * @param[out] out   the matcher, owned by the caller (evbus__matcher_destroy);
 *                   untouched on failure.
 * @param[out] err   on EVBUS_ECONFIG, a NUL-terminated message naming the
 *                   rule, the path in the pattern and why, e.g.
 *                   `rule "orders": pattern.detail.amount[0].numeric: ...`;
 *                   several such lines (up to 8) when that pattern has
 *                   several problems. Only the first refused rule is
 *                   reported. May be NULL if errlen is 0.
 * @return EVBUS_OK; EVBUS_EINVAL (NULL arguments); EVBUS_ECONFIG (a pattern
 *         EventBridge would refuse); EVBUS_ENOMEM.
 */
evbus_err evbus__matcher_compile(const evbus__match_rule *rules, size_t n, evbus__matcher **out,
                                 char *err, size_t errlen);

/** evbus__matcher_compile with options (opts may be NULL). */
evbus_err evbus__matcher_compile_opts(const evbus__match_rule *rules, size_t n,
                                      const evbus__match_opts *opts, evbus__matcher **out,
                                      char *err, size_t errlen);

/** Free a matcher and NULL the pointer; accepts NULL and a pointer to NULL.
 *  No scratch of it may be in use. */
void evbus__matcher_destroy(evbus__matcher **m);

/** How many rules the matcher was compiled from. */
size_t evbus__matcher_rule_count(const evbus__matcher *m);

/** Bytes of heap the compiled matcher holds (for the benchmark and metrics). */
size_t evbus__matcher_memory(const evbus__matcher *m);

/**
 * @brief Working memory for matching against `m` from one thread.
 * @param[out] out owned by the caller (evbus__match_scratch_destroy); it must
 *                 not outlive `m`.
 * @return EVBUS_OK, EVBUS_EINVAL, EVBUS_ENOMEM.
 */
evbus_err evbus__match_scratch_new(const evbus__matcher *m, evbus__match_scratch **out);

/** Free a scratch and NULL the pointer; accepts NULL. */
void evbus__match_scratch_destroy(evbus__match_scratch **s);

/**
 * @brief Match one event held as envelope fields plus detail JSON.
 *
 * Calls cb(arg, rule) for each matching rule. Does not allocate.
 * Only the parts of the detail that some pattern names are decoded; the
 * rest is validated and skipped (skipped only, with `detail_checked`).
 * @return EVBUS_OK (whether or not anything matched); EVBUS_EINVAL (NULL
 *         arguments, or a scratch made for another matcher); EVBUS_EPROTO
 *         (the detail is not valid JSON: see evbus__match_scratch_error; no
 *         callback has been made).
 */
evbus_err evbus__matcher_match(const evbus__matcher *m, evbus__match_scratch *s,
                               const evbus__match_event *ev, evbus__match_cb cb, void *arg);

/**
 * @brief Match one whole event given as a JSON object (envelope fields at the
 * top level, `detail` inside), as EventBridge's TestEventPattern takes it.
 * Same contract as evbus__matcher_match.
 */
evbus_err evbus__matcher_match_json(const evbus__matcher *m, evbus__match_scratch *s,
                                    const char *json, size_t len, evbus__match_cb cb, void *arg);

/**
 * @brief evbus__matcher_match_json for text the caller already knows is a
 * valid JSON object (as `detail_checked`): what no pattern names is skipped
 * without being validated. Matches exactly as evbus__matcher_match_json on
 * valid text; on text that is not valid JSON it never reads outside
 * [json, json + len) but its answer is unspecified.
 */
evbus_err evbus__matcher_match_checked_json(const evbus__matcher *m, evbus__match_scratch *s,
                                            const char *json, size_t len, evbus__match_cb cb,
                                            void *arg);

/**
 * @brief Why the last EVBUS_EPROTO happened: a static reason and the byte
 * offset in the JSON text (the detail for evbus__matcher_match).
 * @return the reason, or NULL if the last match succeeded.
 */
const char *evbus__match_scratch_error(const evbus__match_scratch *s, size_t *offset);

/**
 * @brief Explain why rule `rule` did not match the event of the last
 * successful match call on `s`: writes the path of the first field (in
 * pattern order) that failed and what it wanted, e.g.
 * `detail.state: wanted ["running"]`, for the rule's closest conjunction.
 * @return EVBUS_OK; EVBUS_EINVAL if rule is out of range.
 */
evbus_err evbus__matcher_explain(const evbus__matcher *m, const evbus__match_scratch *s,
                                 uint32_t rule, char *buf, size_t buflen);

/**
 * @brief Validate JSON text strictly (RFC 8259 grammar, UTF-8, escapes and
 * surrogate pairs, depth at most EVBUS_MATCH_DEPTH_MAX) without allocating.
 * @param[out] why    on failure, a static reason (may be NULL).
 * @param[out] offset on failure, the byte offset of the problem (may be NULL).
 * @return EVBUS_OK or EVBUS_EPROTO.
 */
evbus_err evbus__json_validate(const char *json, size_t len, const char **why, size_t *offset);

/**
 * @brief `evbus test-pattern PATTERN EVENT`: argv[0] is "test-pattern".
 * PATTERN and EVENT are JSON given inline, as `@file`, or `-` for stdin (at
 * most one of them). Prints `match` or `no match` and why not, or what is
 * wrong. @return 0 match, 1 no match, 2 invalid pattern, event or usage.
 */
int evbus__cmd_test_pattern(int argc, char **argv);

#ifdef __cplusplus
}
#endif

#endif /* EVBUS_MATCH_H */
