/* Credentials from the environment and from the shared credentials and
 * config files (INI): read at start-up, and again only when the service
 * refuses the keys and the files changed since (creds.c decides when). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "creds_int.h"

static char *dup_or_null(const char *s) {
    return s && *s ? strdup(s) : NULL;
}

int aws_creds_from_env(evbus_aws_creds *out) {
    const char *id = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
    if (!id || !*id || !secret || !*secret)
        return 0;
    out->key_id = strdup(id);
    out->secret = strdup(secret);
    out->token = dup_or_null(getenv("AWS_SESSION_TOKEN"));
    out->expires_ms = 0;
    return 1;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
        *--e = '\0';
    return s;
}

/* Reads the keys of section `section` of INI file `path` into out (only the
 * fields still unset). Returns 1 if the section exists, 0 if not, -1 if the
 * file cannot be read (a missing file is 0). */
static int read_section(const char *path, const char *section, evbus_aws_creds *out) {
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[4096];
    int in = 0, found = 0;
    while (fgets(line, sizeof line, f)) {
        char *s = trim(line);
        if (*s == '#' || *s == ';' || !*s)
            continue;
        if (*s == '[') {
            char *end = strchr(s, ']');
            if (end)
                *end = '\0';
            in = strcmp(trim(s + 1), section) == 0;
            found |= in;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!in || !eq)
            continue;
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        char **slot = strcmp(key, "aws_access_key_id") == 0       ? &out->key_id
                      : strcmp(key, "aws_secret_access_key") == 0 ? &out->secret
                      : strcmp(key, "aws_session_token") == 0     ? &out->token
                                                                  : NULL;
        if (slot && !*slot && *value)
            *slot = strdup(value);
    }
    fclose(f);
    return found;
}

static void file_path(char *out, size_t len, const char *env, const char *home_rel) {
    const char *p = getenv(env);
    if (p && *p) {
        snprintf(out, len, "%s", p);
        return;
    }
    const char *home = getenv("HOME");
    snprintf(out, len, "%s/%s", home ? home : "", home_rel);
}

static void credentials_path(char *out, size_t len) {
    file_path(out, len, "AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
}

static void config_path(char *out, size_t len) {
    file_path(out, len, "AWS_CONFIG_FILE", ".aws/config");
}

int aws_creds_from_files(const char *profile, evbus_aws_creds *out, char *files, size_t fileslen,
                         char *from, size_t fromlen) {
    char creds_path[1024], conf_path[1024], section[300];
    credentials_path(creds_path, sizeof creds_path);
    config_path(conf_path, sizeof conf_path);
    snprintf(files, fileslen, "%s and %s", creds_path, conf_path);
    evbus_aws_creds c = {0};
    /* The credentials file's keys win over the config file's. */
    int found = read_section(creds_path, profile, &c) > 0;
    if (c.key_id && c.secret) {
        *out = c;
        if (from)
            snprintf(from, fromlen, "%s", creds_path);
        return 1;
    }
    aws_creds_clear(&c);
    if (strcmp(profile, "default") == 0)
        snprintf(section, sizeof section, "default");
    else
        snprintf(section, sizeof section, "profile %s", profile);
    found |= read_section(conf_path, section, &c) > 0;
    if (c.key_id && c.secret) {
        *out = c;
        if (from)
            snprintf(from, fromlen, "%s", conf_path);
        return 1;
    }
    aws_creds_clear(&c);
    return found ? -1 : 0;
}

void aws_creds_clear(evbus_aws_creds *c) {
    if (c->secret) /* do not leave the secret in freed memory */
        memset(c->secret, 0, strlen(c->secret));
    free(c->key_id);
    free(c->secret);
    free(c->token);
    memset(c, 0, sizeof *c);
}

static void stamp_one(const char *path, aws_file_stamp *out) {
    struct stat st;
    memset(out, 0, sizeof *out);
    if (stat(path, &st) != 0)
        return; /* missing (or unreadable): "does not exist" is its version */
    out->exists = 1;
    out->dev = st.st_dev;
    out->ino = st.st_ino;
    out->size = st.st_size;
    out->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    out->ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
}

void aws_files_stamp_take(aws_files_stamp *out) {
    char path[1024];
    credentials_path(path, sizeof path);
    stamp_one(path, &out->credentials);
    config_path(path, sizeof path);
    stamp_one(path, &out->config);
}

static int same_file(const aws_file_stamp *a, const aws_file_stamp *b) {
    return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

int aws_files_stamp_equal(const aws_files_stamp *a, const aws_files_stamp *b) {
    return same_file(&a->credentials, &b->credentials) && same_file(&a->config, &b->config);
}
