/* SPDX-License-Identifier: MIT */
/* The CLI side of the control socket (control_proto.h is the protocol). */
#ifndef TLSGUARD_CLI_CLIENT_H
#define TLSGUARD_CLI_CLIENT_H

#include <stdbool.h>
#include <stdio.h>

#include <json-c/json.h>

/* Is @fmt an output format of status and events (text or json)? */
bool client_format_ok(const char *fmt);

/*
 * Connect and send one request. Returns a stream to read the answer lines
 * from, or NULL with a one-line error already printed (which socket, why, and
 * what to do).
 */
FILE *client_request(const char *socket_path, json_object *req);

/* Read one answer line as JSON; NULL at EOF or on a malformed line (*bad set). */
json_object *client_read(FILE *f, int *bad);

#endif /* TLSGUARD_CLI_CLIENT_H */
