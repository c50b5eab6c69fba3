/**
 * @file error.h
 * @brief The one error enum of evbus, shared by the client library, the
 * daemon and the plugin ABI.
 *
 * Values are explicit and never reused: a value that is retired stays
 * reserved, so that a number in a log means the same thing in every version.
 */
#ifndef EVBUS_ERROR_H
#define EVBUS_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(EVBUS_BUILDING) && defined(__GNUC__)
#define EVBUS_API __attribute__((visibility("default")))
#else
#define EVBUS_API
#endif

typedef enum evbus_err {
    EVBUS_OK = 0,
    /** An argument was NULL, empty or out of range. */
    EVBUS_EINVAL = 1,
    /** Memory could not be allocated. */
    EVBUS_ENOMEM = 2,
    /** The operation did not complete before its deadline. */
    EVBUS_ETIMEDOUT = 3,
    /** A ZeroMQ call failed (see errno / zmq_strerror for the cause). */
    EVBUS_EZMQ = 4,
    /** A frame or record could not be decoded. */
    EVBUS_EPROTO = 5,
    /** Storage (LMDB) failed. */
    EVBUS_ESTORE = 6,
    /** Storage is full: the map size is reached. */
    EVBUS_EFULL = 7,
    /** The configuration is invalid. */
    EVBUS_ECONFIG = 8,
    /** A file or directory could not be read or written. */
    EVBUS_EIO = 9,
    /** The resource is held by someone else (e.g. a data directory in use). */
    EVBUS_EBUSY = 10,
    /** The client is closed or the daemon is shutting down. */
    EVBUS_ECLOSED = 11,
    /** Too many requests are in flight; poll for acks first. */
    EVBUS_EAGAIN = 12,
    /** The daemon answered the whole request with an error. */
    EVBUS_EREMOTE = 13,
    /** There is no such value (e.g. an optional plugin setting without a
     * default that the target leaves unset). */
    EVBUS_ENOENT = 14,
} evbus_err;

/**
 * @brief A static, human-readable description of an error value.
 *
 * @param[in] err any value, including unknown ones.
 * @return a string with static storage duration; never NULL.
 */
EVBUS_API const char *evbus_strerror(evbus_err err);

#ifdef __cplusplus
}
#endif

#endif /* EVBUS_ERROR_H */
