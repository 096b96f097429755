/* SPDX-License-Identifier: BSD-3-Clause */
/* The table of transports built into this nvtd. */
#include <string.h>

#include "nvt/loop.h"
#include "nvt/rdma.h"
#include "nvt/transport.h"

static const struct nvt_transport_ops *const nvt_transports[] = {
	&nvt_loop_transport_ops,
	&nvt_rdma_transport_ops,
};

const struct nvt_transport_ops *nvt_transport_find(const char *name)
{
	for (size_t i = 0; i < sizeof(nvt_transports) / sizeof(nvt_transports[0]); i++)
		if (!strcmp(nvt_transports[i]->name, name))
			return nvt_transports[i];
	return NULL;
}

const char *nvt_transport_names(void)
{
	return " loop rdma";
}
