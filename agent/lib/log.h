/* SPDX-License-Identifier: MIT */
/* Agent diagnostics on stderr: "tlsguard: message". Events never go here. */
#ifndef TLSGUARD_LOG_H
#define TLSGUARD_LOG_H

#include <stdbool.h>

extern bool tg_verbose;

void tg_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tg_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tg_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tg_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* TLSGUARD_LOG_H */
