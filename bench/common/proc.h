/* The servers a benchmark run starts: temporary directories, child processes
 * that die with the benchmark, and their peak memory. */
#ifndef BENCH_PROC_H
#define BENCH_PROC_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* Creates a fresh directory base/evbus-bench-TAG-XXXXXX into out. 0 or -1
 * (errno set). */
int bench_tmpdir_new(const char *base, const char *tag, char *out, size_t len);

/* Removes dir and everything in it; accepts "". Errors are ignored: a
 * leftover temporary directory must not fail a benchmark. */
void bench_tmpdir_remove(const char *dir);

/* A loopback TCP port that was free a moment ago, or -1. */
int bench_free_port(void);

/* Starts argv[0] (searched in PATH) with stdout and stderr appended to
 * log_path, in its own process group, and killed by the kernel if this
 * process dies first. 0 with *out set, or -1 with err filled. */
int bench_spawn(char *const argv[], const char *log_path, pid_t *out, char *err, size_t errlen);

/* 1 while pid runs; 0 once it has exited (reaped; *status set if not NULL). */
int bench_alive(pid_t pid, int *status);

/* Says how a process ended, from its wait status. */
void bench_describe_status(int st, char *err, size_t errlen);

/* SIGTERM, then SIGKILL after grace_ms; always reaps. Returns 0 when pid
 * exited with status 0 after SIGTERM, 1 when it exited otherwise or had to be
 * killed (the reason in err), -1 when it could not be reaped. */
int bench_stop(pid_t pid, int grace_ms, char *err, size_t errlen);

/* pid's peak resident set (VmHWM) in MiB, or 0 when unknown. */
double bench_vmhwm_mib(pid_t pid);

/* CPU time pid has used (user + system), in seconds; -1 when unknown. */
double bench_cpu_s(pid_t pid);

/* Copies the last `lines` lines of path to out, indented. */
void bench_log_tail(const char *path, FILE *out, int lines);

#endif
