/**
 * @file gen_casefold.c
 * @brief Build-time generator of the case folding table of equals-ignore-case.
 *
 *   evbus-gen-casefold CaseFolding.txt OUT.h
 *
 * Reads Unicode's CaseFolding.txt (Debian's unicode-data package installs it
 * in /usr/share/unicode) and writes the simple case folding (the records of
 * status C and S; not F, the full foldings that change the number of
 * characters, nor T, the Turkic ones) as a two-stage table: the code point's
 * block (128 code points) selects a row of deltas, fold(c) = c + delta.
 * Blocks without any folding share row 0, which is all zeros. Code points
 * below U+0800 (one or two UTF-8 bytes) also get a direct table of deltas.
 *
 * The generator refuses data that would break the folding code's
 * assumptions, so that a new Unicode version cannot silently corrupt the
 * table: ASCII must fold as A-Z to a-z and nothing else (fold.c does that
 * inline), a folding must not produce a surrogate or leave the code space,
 * and it must make at most 3 UTF-8 bytes out of 2 (EVBUS__FOLD_LEN_MAX in
 * match_int.h relies on it).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CP_COUNT    0x110000u
#define BLOCK_SHIFT 7
#define BLOCK_SIZE  (1u << BLOCK_SHIFT)
#define N_BLOCKS    (CP_COUNT >> BLOCK_SHIFT)

static int utf8_len(uint32_t c) {
    return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
}

static int fail(const char *path, unsigned line, const char *why) {
    fprintf(stderr, "evbus-gen-casefold: %s:%u: %s\n", path, line, why);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: evbus-gen-casefold CaseFolding.txt OUT.h\n");
        return 2;
    }
    const char *in_path = argv[1], *out_path = argv[2];
    FILE *in = fopen(in_path, "r");
    if (!in) {
        fprintf(stderr,
                "evbus-gen-casefold: cannot open %s (%s): equals-ignore-case is built from "
                "Unicode's CaseFolding.txt; install Debian's unicode-data package "
                "(scripts/install-deps.sh) or point -DEVBUS_UNICODE_DIR at a copy\n",
                in_path, strerror(errno));
        return 1;
    }
    int32_t *delta = calloc(CP_COUNT, sizeof *delta);
    if (!delta) {
        fclose(in);
        return fail(in_path, 0, "out of memory");
    }

    char version[32] = "unknown";
    char line[512];
    unsigned lineno = 0, mappings = 0;
    int rc = 1;
    while (fgets(line, sizeof line, in)) {
        lineno++;
        unsigned major, minor, patch;
        if (sscanf(line, "# CaseFolding-%u.%u.%u.txt", &major, &minor, &patch) == 3)
            snprintf(version, sizeof version, "%u.%u.%u", major, minor, patch);
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        /* CODE; STATUS; MAPPING; — only single code point mappings (C, S)
         * are kept: F maps to several code points, T is Turkic-only. */
        unsigned long code, map;
        char status;
        int used = 0;
        if (sscanf(line, " %lx ; %c ; %n", &code, &status, &used) != 2)
            continue;
        if (status != 'C' && status != 'S')
            continue;
        char *end;
        map = strtoul(line + used, &end, 16);
        while (*end == ' ')
            end++;
        if (end == line + used || *end != ';') {
            rc = fail(in_path, lineno, "a C or S record must map to exactly one code point");
            goto out;
        }
        if (code >= CP_COUNT || map >= CP_COUNT || (map >= 0xD800 && map <= 0xDFFF)) {
            rc = fail(in_path, lineno, "code point outside Unicode's scalar values");
            goto out;
        }
        if (code < 0x80 && !(code >= 'A' && code <= 'Z' && map == code + 32)) {
            /* fold.c folds ASCII inline as A-Z to a-z. */
            rc = fail(in_path, lineno, "ASCII folds to something other than A-Z to a-z");
            goto out;
        }
        if (2 * utf8_len((uint32_t)map) > 3 * utf8_len((uint32_t)code)) {
            rc = fail(in_path, lineno, "folding grows UTF-8 by more than 3/2");
            goto out;
        }
        if (delta[code] != 0) {
            rc = fail(in_path, lineno, "two simple foldings of one code point");
            goto out;
        }
        delta[code] = (int32_t)map - (int32_t)code;
        mappings++;
    }
    if (ferror(in)) {
        rc = fail(in_path, lineno, "read error");
        goto out;
    }
    if (mappings < 1000) {
        rc = fail(in_path, lineno, "too few C and S records: is this CaseFolding.txt?");
        goto out;
    }

    /* Stage 1: block -> row; identical rows are shared. */
    static uint16_t stage1[N_BLOCKS];
    uint32_t *row_of = calloc(N_BLOCKS, sizeof *row_of); /* row -> first block */
    unsigned rows = 1;                                   /* row 0: all zeros */
    if (!row_of) {
        rc = fail(in_path, 0, "out of memory");
        goto out;
    }
    for (uint32_t b = 0; b < N_BLOCKS; b++) {
        const int32_t *d = delta + (b << BLOCK_SHIFT);
        int zero = 1;
        for (uint32_t i = 0; i < BLOCK_SIZE && zero; i++)
            zero = d[i] == 0;
        if (zero) {
            stage1[b] = 0;
            continue;
        }
        unsigned r;
        for (r = 1; r < rows; r++)
            if (!memcmp(delta + (row_of[r] << BLOCK_SHIFT), d, BLOCK_SIZE * sizeof *d))
                break;
        if (r == rows)
            row_of[rows++] = b;
        stage1[b] = (uint16_t)r;
    }

    FILE *out = fopen(out_path, "w");
    if (!out) {
        free(row_of);
        fprintf(stderr, "evbus-gen-casefold: cannot write %s: %s\n", out_path, strerror(errno));
        goto out;
    }
    fprintf(out,
            "/* Generated by evbus-gen-casefold from %s (Unicode %s): do not edit.\n"
            " * Simple case folding (status C and S): fold(c) = c + "
            "evbus__fold_delta[evbus__fold_block[c >> %d]][c & %u]. */\n"
            "#define EVBUS__CASEFOLD_UNICODE_VERSION \"%s\"\n"
            "#define EVBUS__CASEFOLD_MAPPINGS %u\n"
            "#define EVBUS__CASEFOLD_SHIFT %d\n\n",
            in_path, version, BLOCK_SHIFT, BLOCK_SIZE - 1, version, mappings, BLOCK_SHIFT);
    fprintf(out, "static const %s evbus__fold_block[%u] = {", rows <= 256 ? "uint8_t" : "uint16_t",
            N_BLOCKS);
    for (uint32_t b = 0; b < N_BLOCKS; b++)
        fprintf(out, "%s%u,", b % 32 ? "" : "\n", stage1[b]);
    fprintf(out, "\n};\n\nstatic const int32_t evbus__fold_delta[%u][%u] = {\n", rows, BLOCK_SIZE);
    for (unsigned r = 0; r < rows; r++) {
        const int32_t *d = r ? delta + (row_of[r] << BLOCK_SHIFT) : NULL;
        fprintf(out, "  {");
        for (uint32_t i = 0; i < BLOCK_SIZE; i++)
            fprintf(out, "%s%d,", i % 16 ? "" : "\n   ", d ? d[i] : 0);
        fprintf(out, "},\n");
    }
    fprintf(out, "};\n");
    /* U+0000..U+07FF (one or two UTF-8 bytes) also get a direct table: the
     * scripts most text in events is in fold with one load. */
    fprintf(out, "\nstatic const int16_t evbus__fold_low[0x800] = {");
    for (uint32_t c = 0; c < 0x800; c++) {
        if (delta[c] < INT16_MIN || delta[c] > INT16_MAX) {
            fclose(out);
            remove(out_path);
            free(row_of);
            rc = fail(in_path, 0, "a folding below U+0800 moves by more than an int16");
            goto out;
        }
        fprintf(out, "%s%d,", c % 16 ? "" : "\n", delta[c]);
    }
    fprintf(out, "\n};\n");
    free(row_of);
    if (fclose(out) != 0) {
        fprintf(stderr, "evbus-gen-casefold: cannot write %s\n", out_path);
        remove(out_path);
        goto out;
    }
    rc = 0;
out:
    free(delta);
    fclose(in);
    return rc;
}
