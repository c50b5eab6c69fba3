#include "curve_keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

/* Key files are tiny; anything larger is not one. */
#define KEYFILE_MAX 4096

bool evbus__curve_key_decode(const char *s, size_t len, unsigned char raw[32]) {
    if (len != EVBUS__Z85_KEY_LEN)
        return false;
    char text[EVBUS__Z85_KEY_LEN + 1];
    memcpy(text, s, len);
    text[len] = '\0';
    unsigned char tmp[32];
    bool ok = zmq_z85_decode(tmp, text) != NULL;
    if (ok && raw)
        memcpy(raw, tmp, 32);
    explicit_bzero(tmp, sizeof tmp);
    explicit_bzero(text, sizeof text);
    return ok;
}

/* Reads the file and returns its key lines (trimmed, comments and blank lines
 * skipped) as offsets into buf. Returns the number of lines, or -1. */
static int read_key_lines(const char *path, char *buf, size_t buflen, const char *lines[2],
                          size_t lens[2], struct stat *st, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    ssize_t n = fstat(fd, st) == 0 ? read(fd, buf, buflen - 1) : -1;
    int e = errno;
    close(fd);
    if (n < 0) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(e));
        return -1;
    }
    buf[n] = '\0';
    int count = 0;
    for (char *line = buf; line && *line && count < 2;) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        while (*line == ' ' || *line == '\t')
            line++;
        size_t len = strlen(line);
        while (len && (line[len - 1] == ' ' || line[len - 1] == '\t' || line[len - 1] == '\r'))
            len--;
        if (len && line[0] != '#') {
            lines[count] = line;
            lens[count++] = len;
        }
        line = next;
    }
    return count;
}

evbus_err evbus__curve_keyfile_read(const char *path, char pub[41], char sec[41], char *err,
                                    size_t errlen) {
    char buf[KEYFILE_MAX];
    const char *lines[2] = {0};
    size_t lens[2] = {0};
    struct stat st;
    int n = read_key_lines(path, buf, sizeof buf, lines, lens, &st, err, errlen);
    if (n < 0)
        return EVBUS_EIO;
    evbus_err rc = EVBUS_ECONFIG;
    char p[41] = "", s[41] = "", derived[41] = "";
    bool keys = n == 2 && evbus__curve_key_decode(lines[0], lens[0], NULL) &&
                evbus__curve_key_decode(lines[1], lens[1], NULL);
    if (keys) {
        memcpy(p, lines[0], 40);
        memcpy(s, lines[1], 40);
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen,
                 "%s: a secret key file must be readable by its owner only (mode %04o): run "
                 "chmod 600 %s",
                 path, (unsigned)(st.st_mode & 07777), path);
    } else if (!keys) {
        snprintf(err, errlen,
                 "%s: not a key file (expected two lines of 40 Z85 characters: the public key, "
                 "then the secret key, as `evbus keygen` writes them)",
                 path);
    } else if (zmq_curve_public(derived, s) != 0 || strcmp(derived, p) != 0) {
        snprintf(err, errlen,
                 "%s: its secret key does not belong to its public key: write the pair again "
                 "with `evbus keygen`",
                 path);
    } else {
        memcpy(pub, p, 41);
        memcpy(sec, s, 41);
        rc = EVBUS_OK;
    }
    explicit_bzero(buf, sizeof buf);
    explicit_bzero(s, sizeof s);
    return rc;
}

evbus_err evbus__curve_pubkey_read(const char *text_or_path, char pub[41], char *err,
                                   size_t errlen) {
    if (strlen(text_or_path) == EVBUS__Z85_KEY_LEN &&
        evbus__curve_key_decode(text_or_path, EVBUS__Z85_KEY_LEN, NULL) &&
        access(text_or_path, F_OK) != 0) {
        memcpy(pub, text_or_path, 41);
        return EVBUS_OK;
    }
    char buf[KEYFILE_MAX];
    const char *lines[2] = {0};
    size_t lens[2] = {0};
    struct stat st;
    int n = read_key_lines(text_or_path, buf, sizeof buf, lines, lens, &st, err, errlen);
    if (n < 0) {
        snprintf(err, errlen,
                 "'%s' is neither a 40-character Z85 public key nor a readable key file",
                 text_or_path);
        return EVBUS_EIO;
    }
    evbus_err rc = EVBUS_OK;
    if (n < 1 || !evbus__curve_key_decode(lines[0], lens[0], NULL)) {
        snprintf(err, errlen,
                 "%s: its first line is not a 40-character Z85 public key (give PATH.pub as "
                 "written by `evbus keygen PATH`)",
                 text_or_path);
        rc = EVBUS_ECONFIG;
    } else {
        memcpy(pub, lines[0], 40);
        pub[40] = '\0';
    }
    explicit_bzero(buf, sizeof buf);
    return rc;
}

/* Creates `path` exclusively with exactly `mode` and writes text into it. */
static evbus_err write_new(const char *path, mode_t mode, const char *text, char *err,
                           size_t errlen) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot create: %s%s", path, strerror(errno),
                 errno == EEXIST ? " (keygen never overwrites a key: remove it first)" : "");
        return errno == EEXIST ? EVBUS_EBUSY : EVBUS_EIO;
    }
    /* The umask may have taken bits away (or, for .key, must not matter). */
    size_t len = strlen(text);
    bool ok = fchmod(fd, mode) == 0 && write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    int e = errno;
    if (close(fd) != 0)
        ok = false;
    if (!ok) {
        unlink(path);
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(e));
        return EVBUS_EIO;
    }
    return EVBUS_OK;
}

evbus_err evbus__curve_keygen(const char *path, char pub[41], char *err, size_t errlen) {
    if (!zmq_has("curve")) {
        snprintf(err, errlen, "this libzmq was built without CURVE");
        return EVBUS_EINVAL;
    }
    char pub_path[4096], key_path[4096];
    if (snprintf(pub_path, sizeof pub_path, "%s.pub", path) >= (int)sizeof pub_path ||
        snprintf(key_path, sizeof key_path, "%s.key", path) >= (int)sizeof key_path) {
        snprintf(err, errlen, "path too long");
        return EVBUS_EINVAL;
    }
    char p[41], s[41], text[200];
    if (zmq_curve_keypair(p, s) != 0) {
        snprintf(err, errlen, "cannot generate a key pair: %s", zmq_strerror(errno));
        return EVBUS_EIO;
    }
    /* The secret first: if it cannot be written, no public key is left that
     * names a pair nobody has. */
    snprintf(text, sizeof text, "%s\n%s\n", p, s);
    evbus_err rc = write_new(key_path, 0600, text, err, errlen);
    explicit_bzero(text, sizeof text);
    explicit_bzero(s, sizeof s);
    if (rc != EVBUS_OK)
        return rc;
    snprintf(text, sizeof text, "%s\n", p);
    rc = write_new(pub_path, 0644, text, err, errlen);
    if (rc != EVBUS_OK) {
        unlink(key_path);
        return rc;
    }
    memcpy(pub, p, 41);
    return EVBUS_OK;
}
