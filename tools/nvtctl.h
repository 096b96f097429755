/* SPDX-License-Identifier: BSD-3-Clause */
/* nvtctl's commands that do more than pass a line through: stats and top (tools/nvtctl_stats.c). */
#ifndef NVTCTL_H
#define NVTCTL_H

/* `stats [NQN [NSID]] [--json]`: argv[0] is "stats". Return: the exit status (0, 1 nvtd said error, 2). */
int nvtctl_stats_main(const char *sock, int argc, char **argv);

/* `top [-d SECS] [-n ITERATIONS]`: argv[0] is "top". Return: the exit status. */
int nvtctl_top_main(const char *sock, int argc, char **argv);

#endif /* NVTCTL_H */
