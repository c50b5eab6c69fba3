#include "evbus/error.h"

const char *evbus_strerror(evbus_err err) {
    switch (err) {
    case EVBUS_OK: return "success";
    case EVBUS_EINVAL: return "invalid argument";
    case EVBUS_ENOMEM: return "out of memory";
    case EVBUS_ETIMEDOUT: return "timed out";
    case EVBUS_EZMQ: return "ZeroMQ error";
    case EVBUS_EPROTO: return "malformed frame or record";
    case EVBUS_ESTORE: return "storage error";
    case EVBUS_EFULL: return "storage full";
    case EVBUS_ECONFIG: return "invalid configuration";
    case EVBUS_EIO: return "I/O error";
    case EVBUS_EBUSY: return "resource in use";
    case EVBUS_ECLOSED: return "closed";
    case EVBUS_EAGAIN: return "too many requests in flight";
    case EVBUS_EREMOTE: return "request refused by the router";
    case EVBUS_ENOENT: return "no such value";
    }
    return "unknown error";
}
