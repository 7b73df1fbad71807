/* SPDX-License-Identifier: MIT */
/* The CLI side of the control socket (see control.h for the protocol). */
#ifndef TLSGUARD_CLI_CLIENT_H
#define TLSGUARD_CLI_CLIENT_H

#include <stdio.h>

#include <json-c/json.h>

/* {"v": TG_CONTROL_VERSION, "cmd": CMD}: add the command's fields, then send. */
json_object *client_new_request(const char *cmd);

/*
 * Connect and send one request. Returns a stream to read the answer lines
 * from, or NULL with a one-line error already printed (which socket, why, and
 * what to do).
 */
FILE *client_request(const char *socket_path, json_object *req);

/* Read one answer line as JSON; NULL at EOF or on a malformed line (*bad set). */
json_object *client_read(FILE *f, int *bad);

#endif /* TLSGUARD_CLI_CLIENT_H */
