/* SPDX-License-Identifier: MIT */
/*
 * The systemd notification protocol (sd_notify(3)), without libsystemd: one
 * datagram of "KEY=value" lines to the socket $NOTIFY_SOCKET names. The unit
 * is Type=notify: systemd considers the agent started once its programs are
 * attached (READY=1), shows reloads (RELOADING=1) and a one-line STATUS=,
 * and restarts an agent whose event loop stops answering (WATCHDOG=1, when
 * WatchdogSec= is set). Without $NOTIFY_SOCKET every call does nothing.
 */
#ifndef TLSGUARD_AGENT_NOTIFY_H
#define TLSGUARD_AGENT_NOTIFY_H

#include <stdbool.h>

/*
 * Reads $NOTIFY_SOCKET and $WATCHDOG_USEC/$WATCHDOG_PID once and removes
 * them from the environment (nothing the agent starts should notify for it).
 */
void notify_init(void);

/* Sends @state ("READY=1\nSTATUS=..."); 0, or -errno (also logged at -v). */
int notify_send(const char *state);

/* Whether systemd asked for watchdog pings, and (@usec may be NULL) their period in µs. */
bool notify_watchdog(unsigned long long *usec);

#endif /* TLSGUARD_AGENT_NOTIFY_H */
