/* SPDX-License-Identifier: BSD-3-Clause */
/* The service manager's readiness protocol (sd_notify) without libsystemd: one datagram per state change. */
#ifndef NVT_NOTIFY_H
#define NVT_NOTIFY_H

/**
 * nvt_notify_init() - take the service manager's socket from $NOTIFY_SOCKET
 * (a path, or "@name" for an abstract socket) and remove the variable from
 * the environment, so nothing nvtd starts later talks to systemd in its name.
 * Call it once, before any thread exists (it edits the environment).
 *
 * Return: 0 (also when nvtd does not run under a service manager), or
 * -EINVAL for a value nvtd cannot use (logged once; notifications are off).
 */
int nvt_notify_init(void);

/**
 * nvt_notify() - send one state message to the service manager, e.g.
 * "READY=1\nSTATUS=serving". Does nothing without nvt_notify_init() or
 * $NOTIFY_SOCKET. Never blocks: a manager that does not read is not waited for.
 * @fmt: printf format of the newline-separated VAR=value assignments.
 *
 * Return: 0, or -errno if the datagram could not be sent (not logged: the
 * caller decides whether that matters).
 */
int nvt_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* NVT_NOTIFY_H */
