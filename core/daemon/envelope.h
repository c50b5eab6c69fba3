/* The JSON form of an event that Amazon EventBridge delivers to its targets,
 * built once per delivery attempt for sinks that send or write it. */
#ifndef EVBUS_ENVELOPE_H
#define EVBUS_ENVELOPE_H

#include "evbus.pb-c.h"
#include "frame.h"

/* Appends the envelope of `ev` (whose detail is already known to be a JSON
 * object) to `out`: {"version":"0","id":...,"detail-type":...,"source":...,
 * "account":"","time":...,"region":...,"resources":[...],"detail":{...}}.
 * Returns 0, or -1 when out of memory. */
int evbus__envelope_json(const Evbus__V1__Event *ev, evbus__bytes *out);

#endif
