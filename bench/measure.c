/* Timing helper for bench/run.sh. Commands are argv lists separated by ";;";
 * "{}" inside an argument is replaced by the iteration number.
 *
 *   measure loop N WARMUP OUT cmd1 ;; cmd2 ...
 *       WARMUP untimed iterations ({} = w0, w1, ...), then N iterations
 *       ({} = 0..N-1); in each iteration the commands run one after the
 *       other and each is timed (fork to reap). OUT gets one line per
 *       iteration: the nanoseconds of each command, tab-separated (and
 *       OUT.cpu the user,sys CPU microseconds of each, with what it reaped). A
 *       command exiting non-zero aborts (exit 1), unless MEASURE_KEEP_GOING=1:
 *       then its column holds "F" and the iteration goes on.
 *   measure par N OUT cmd1 ;; cmd2 ...
 *       N workers started at once; worker i runs the commands in turn with
 *       {} = i (stopping at the first failure). OUT gets the wall time in ns
 *       from the first fork to the last worker's exit, a tab, and the number
 *       of workers that failed.
 *   measure rss OUT cmd
 *       Runs cmd once under ptrace (PTRACE_O_TRACEEXIT, its children are
 *       not traced), reads VmHWM of that one process just before it exits,
 *       and writes "VmHWM_kB ru_maxrss_kB" (ru_maxrss from wait4 includes
 *       the children it reaped). If the process re-executes itself (crun runs
 *       a sealed copy of its binary), VmHWM is that of the last image.
 * Runtime output goes to stderr of this program (the script redirects it). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXC 8
#define MAXA 64
static char **cmds[MAXC];
static int ncmd;

static uint64_t now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + t.tv_nsec;
}

static void parse(int argc, char **argv) {
  int start = 0;
  for (int i = 0; i <= argc; i++) {
    if (i == argc || strcmp(argv[i], ";;") == 0) {
      if (i == start || ncmd == MAXC) { fprintf(stderr, "measure: bad command list\n"); exit(2); }
      argv[i == argc ? argc : i] = NULL;
      cmds[ncmd++] = argv + start;
      start = i + 1;
    }
  }
}

/* Substitute {} in cmd with tag; result in static storage owned by caller. */
static char **subst(char **cmd, const char *tag, char *buf, size_t len) {
  static char *out[MAXA];
  int n = 0;
  for (; cmd[n] && n < MAXA - 1; n++) {
    char *p = strstr(cmd[n], "{}");
    if (!p) { out[n] = cmd[n]; continue; }
    int w = snprintf(buf, len, "%.*s%s%s", (int)(p - cmd[n]), cmd[n], tag, p + 2);
    out[n] = buf;
    buf += w + 1;
    len -= w + 1;
  }
  out[n] = NULL;
  return out;
}

static pid_t spawn(char **argv, int trace) {
  pid_t pid = fork();
  if (pid < 0) { perror("fork"); exit(1); }
  if (pid == 0) {
    int fd = open("/dev/null", 0);
    if (fd >= 0) { dup2(fd, 0); dup2(2, 1); }
    if (trace) ptrace(PTRACE_TRACEME, 0, 0, 0);
    execvp(argv[0], argv);
    perror(argv[0]);
    _exit(127);
  }
  return pid;
}

static int keep_going; /* MEASURE_KEEP_GOING=1: a failed command is recorded as F */

/* CPU time (user, sys) in microseconds of the last command, with the
 * descendants it reaped (the runtime reaps the container's processes). */
static long last_user_us, last_sys_us;

static int run_one(char **cmd, const char *tag, uint64_t *ns) {
  char buf[8192];
  char **argv = subst(cmd, tag, buf, sizeof buf);
  struct rusage ru;
  uint64_t t0 = now();
  pid_t pid = spawn(argv, 0);
  int st;
  while (wait4(pid, &st, 0, &ru) < 0 && errno == EINTR) {}
  *ns = now() - t0;
  last_user_us = ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec;
  last_sys_us = ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec;
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "measure: command failed (status %#x):", st);
    for (char **a = argv; *a; a++) fprintf(stderr, " %s", *a);
    fprintf(stderr, "\n");
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: see the comment in measure.c\n"); return 2; }
  const char *mode = argv[1];
  keep_going = getenv("MEASURE_KEEP_GOING") && atoi(getenv("MEASURE_KEEP_GOING"));
  if (strcmp(mode, "loop") == 0) {
    int n = atoi(argv[2]), warm = atoi(argv[3]);
    FILE *out = fopen(argv[4], "w");
    char cpath[4096];
    snprintf(cpath, sizeof cpath, "%s.cpu", argv[4]);
    FILE *cpu = fopen(cpath, "w");
    if (!out || !cpu) { perror(argv[4]); return 1; }
    parse(argc - 5, argv + 5);
    char tag[32];
    uint64_t ns;
    for (int i = 0; i < warm; i++) {
      snprintf(tag, sizeof tag, "w%d", i);
      for (int c = 0; c < ncmd; c++)
        if (run_one(cmds[c], tag, &ns) && !keep_going) return 1;
    }
    for (int i = 0; i < n; i++) {
      snprintf(tag, sizeof tag, "%d", i);
      for (int c = 0; c < ncmd; c++) {
        if (c) { fputc('\t', out); fputc('\t', cpu); }
        if (run_one(cmds[c], tag, &ns) == 0) {
          fprintf(out, "%llu", (unsigned long long)ns);
          fprintf(cpu, "%ld,%ld", last_user_us, last_sys_us);
        } else if (keep_going) {
          fputc('F', out);
          fputc('F', cpu);
        } else {
          return 1;
        }
      }
      fprintf(out, "\n");
      fprintf(cpu, "\n");
    }
    return fclose(out) || fclose(cpu) ? 1 : 0;
  }
  if (strcmp(mode, "par") == 0) {
    int n = atoi(argv[2]);
    FILE *out = fopen(argv[3], "w");
    if (!out) { perror(argv[3]); return 1; }
    parse(argc - 4, argv + 4);
    uint64_t t0 = now();
    for (int i = 0; i < n; i++) {
      pid_t pid = fork();
      if (pid < 0) { perror("fork"); return 1; }
      if (pid == 0) {
        char tag[32];
        uint64_t ns;
        snprintf(tag, sizeof tag, "%d", i);
        for (int c = 0; c < ncmd; c++)
          if (run_one(cmds[c], tag, &ns)) _exit(1);
        _exit(0);
      }
    }
    int st, failed = 0;
    pid_t p;
    while ((p = wait(&st)) > 0 || errno == EINTR)
      if (p > 0 && (!WIFEXITED(st) || WEXITSTATUS(st))) failed++;
    uint64_t wall = now() - t0;
    fprintf(out, "%llu\t%d\n", (unsigned long long)wall, failed);
    fclose(out);
    if (failed) fprintf(stderr, "measure: %d workers failed\n", failed);
    return 0;
  }
  if (strcmp(mode, "rss") == 0) {
    FILE *out = fopen(argv[2], "w");
    if (!out) { perror(argv[2]); return 1; }
    parse(argc - 3, argv + 3);
    char buf[8192];
    char **cmd = subst(cmds[0], "rss", buf, sizeof buf);
    pid_t pid = spawn(cmd, 1);
    long hwm = -1;
    int st;
    struct rusage ru;
    for (;;) {
      pid_t w = wait4(pid, &st, __WALL, &ru);
      if (w < 0) { if (errno == EINTR) continue; perror("wait4"); return 1; }
      if (WIFEXITED(st) || WIFSIGNALED(st)) break;
      if (!WIFSTOPPED(st)) continue;
      int sig = WSTOPSIG(st), event = st >> 16;
      if (sig == SIGTRAP && event == 0 && hwm == -1) {
        /* the stop after execve: ask for an exit stop */
        ptrace(PTRACE_SETOPTIONS, pid, 0,
               PTRACE_O_TRACEEXIT | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL);
        hwm = -2;
        sig = 0;
      } else if (event == PTRACE_EVENT_EXIT) {
        char path[64], line[256];
        snprintf(path, sizeof path, "/proc/%d/status", pid);
        FILE *f = fopen(path, "r");
        while (f && fgets(line, sizeof line, f))
          if (strncmp(line, "VmHWM:", 6) == 0) hwm = atol(line + 6);
        if (f) fclose(f);
        sig = 0;
      } else if (sig == SIGTRAP && event) {
        sig = 0;
      }
      ptrace(PTRACE_CONT, pid, 0, sig);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      fprintf(stderr, "measure: rss command failed (status %#x)\n", st);
      return 1;
    }
    fprintf(out, "%ld %ld\n", hwm, ru.ru_maxrss);
    fclose(out);
    return 0;
  }
  fprintf(stderr, "measure: unknown mode %s\n", mode);
  return 2;
}
