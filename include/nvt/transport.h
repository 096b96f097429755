/* SPDX-License-Identifier: BSD-3-Clause */
/* The table of transports a listener can name in the config. */
#ifndef NVT_TRANSPORT_H
#define NVT_TRANSPORT_H

#include "nvt/target.h"

/** nvt_transport_find() - the transport registered under @name, or NULL if not built in. */
const struct nvt_transport_ops *nvt_transport_find(const char *name);

/** nvt_transport_names() - " loop rdma": the transports this build has, for --version. */
const char *nvt_transport_names(void);

#endif /* NVT_TRANSPORT_H */
