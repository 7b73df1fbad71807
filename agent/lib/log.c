// SPDX-License-Identifier: MIT
#define _GNU_SOURCE		/* vasprintf */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enum_name.h"
#include "escape.h"
#include "log.h"

bool tg_verbose;

/*
 * One line per message, written at once: threads (host refresh, the policy
 * reload, the sinks) log too, and their lines must not interleave. Messages
 * quote names a workload or a remote server chose; whatever a caller passed,
 * control bytes and invalid UTF-8 reach the terminal or journal only as
 * "\xNN" (escape.h). Backslashes are left as the caller wrote them: a caller
 * that quotes such a name escapes it fully itself (tg_escape).
 */
static void vlog(const char *level, const char *fmt, va_list ap)
{
	char fallback[512], *msg = NULL, *line;
	size_t cap;

	if (vasprintf(&msg, fmt, ap) < 0) {
		msg = NULL;
		snprintf(fallback, sizeof(fallback), "%s", fmt);	/* the format, at least */
	}
	cap = strlen(msg ? msg : fallback) * 4 + 64;
	line = malloc(cap);
	if (line) {
		size_t n = (size_t)snprintf(line, cap, "tlsguard: %s", level ? level : "");

		tg_escape(line + n, cap - n - 1, msg ? msg : fallback, strlen(msg ? msg : fallback),
			  TG_ESC_KEEP_BACKSLASH);
		strcat(line, "\n");
		fputs(line, stderr);
	} else {
		fputs("tlsguard: out of memory while logging\n", stderr);
	}
	free(line);
	free(msg);
}

void tg_log(enum tg_log_level level, const char *fmt, ...)
{
	static const char *const prefixes[] = {
		[TG_LOG_WARN] = "warning: ",
		[TG_LOG_DEBUG] = "debug: ",
	};
	va_list ap;

	if (level == TG_LOG_DEBUG && !tg_verbose)
		return;
	va_start(ap, fmt);
	vlog(TG_ENUM_NAME(prefixes, level, NULL), fmt, ap);
	va_end(ap);
}
