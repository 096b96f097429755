/* SPDX-License-Identifier: BSD-3-Clause */
/* The table of backends a namespace can name in the config. */
#include <string.h>

#include "nvt/backend.h"

static const struct nvt_backend_ops *const nvt_backends[] = {
	&nvt_ram_backend_ops,
	&nvt_uring_backend_ops,
	&nvt_nvme_backend_ops,
};

const struct nvt_backend_ops *nvt_backend_find(const char *name)
{
	for (size_t i = 0; i < sizeof(nvt_backends) / sizeof(nvt_backends[0]); i++)
		if (!strcmp(nvt_backends[i]->name, name))
			return nvt_backends[i];
	return NULL;
}

const struct nvt_backend_ops *nvt_backend_get(unsigned int i)
{
	return i < sizeof(nvt_backends) / sizeof(nvt_backends[0]) ? nvt_backends[i] : NULL;
}
