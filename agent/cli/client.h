/* SPDX-License-Identifier: MIT */
/* The CLI side of the control socket (control_proto.h is the protocol). */
#ifndef TLSGUARD_CLI_CLIENT_H
#define TLSGUARD_CLI_CLIENT_H

#include <stdbool.h>
#include <stdio.h>

#include <json-c/json.h>

#include "cmdline.h"

/*
 * The options of status and events (tg_cmdline_parse(), no operands), then
 * the output format *@fmt they left: text or json, else the usage on stderr
 * and TG_EXIT_USAGE. TG_CMDLINE_GO, or the exit code to stop with.
 */
int client_parse_options(int argc, char **argv, const struct tg_cmdline_opt *opts,
			 void (*usage)(FILE *out), void *args, const char *const *fmt);

/*
 * Connect and send one request. Returns a stream to read the answer lines
 * from, or NULL with a one-line error already printed (which socket, why, and
 * what to do).
 */
FILE *client_request(const char *socket_path, json_object *req);

/* Read one answer line as JSON; NULL at EOF or on a malformed line (*bad set). */
json_object *client_read(FILE *f, int *bad);

#endif /* TLSGUARD_CLI_CLIENT_H */
