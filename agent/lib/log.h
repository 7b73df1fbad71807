/* SPDX-License-Identifier: MIT */
/* Agent diagnostics on stderr: "tlsguard: message". Events never go here. */
#ifndef TLSGUARD_LOG_H
#define TLSGUARD_LOG_H

#include <stdbool.h>

extern bool tg_verbose;

enum tg_log_level {
	TG_LOG_ERR,
	TG_LOG_WARN,
	TG_LOG_INFO,
	TG_LOG_DEBUG,		/* only with tg_verbose (-v) */
};

/* One line on stderr: "tlsguard: " and, for warnings and debug, the level. */
void tg_log(enum tg_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define tg_err(...)	tg_log(TG_LOG_ERR, __VA_ARGS__)
#define tg_warn(...)	tg_log(TG_LOG_WARN, __VA_ARGS__)
#define tg_info(...)	tg_log(TG_LOG_INFO, __VA_ARGS__)
#define tg_debug(...)	tg_log(TG_LOG_DEBUG, __VA_ARGS__)

#endif /* TLSGUARD_LOG_H */
