/* SPDX-License-Identifier: MIT */
/*
 * Secrets (connection strings, event keys) come from files only: regular
 * files, never pipes or terminals (that would mean the secret went through
 * argv or a shell), with a warning when every user can read them.
 */
#ifndef TLSGUARD_AGENT_SECRETFILE_H
#define TLSGUARD_AGENT_SECRETFILE_H

#include <stddef.h>

/*
 * Read up to @cap bytes of @path into @buf; *len is how many. 0 or -errno
 * with "[WHAT ]PATH: reason" in @err (@what may be NULL, e.g. "key file").
 */
int secret_file_read(const char *path, const char *what, void *buf, size_t cap, size_t *len,
		     char *err, size_t errlen);

#endif /* TLSGUARD_AGENT_SECRETFILE_H */
