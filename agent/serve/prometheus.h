/* SPDX-License-Identifier: MIT */
/* /metrics: the Prometheus text exposition format (0.0.4) of a status view (status.h). */
#ifndef TLSGUARD_PROMETHEUS_H
#define TLSGUARD_PROMETHEUS_H

#include <stddef.h>

struct tg_status_view;

/* The exposition text into a malloc'd buffer (*out, *len). 0 or -ENOMEM. */
int prometheus_build(const struct tg_status_view *v, char **out, size_t *len);

#endif /* TLSGUARD_PROMETHEUS_H */
