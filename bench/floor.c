/* The floor: what starting a container costs with no runtime logic at all.
 * clone() into new mount, pid, uts, ipc, net and cgroup namespaces; in the
 * child: make / private, bind-mount the rootfs onto itself, mount proc,
 * pivot_root into it, exec /bin/true. The parent waits.
 * Usage: floor ROOTFS [CGROUP_DIR...]   (as root; exit status = the container's)
 * With CGROUP_DIRs (e.g. /sys/fs/cgroup/cpu/x, one per v1 hierarchy), the
 * parent also creates them, writes the child's pid into each cgroup.procs
 * before letting it go on (the child waits on a pipe), and removes them
 * after: the floor of a runtime that places the container in its cgroups. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <signal.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char stack[64 * 1024];
static const char *rootfs;
static int gate[2];

static int die(const char *what) { perror(what); _exit(125); }

static int child(void *arg) {
  (void)arg;
  char proc[4096], c;
  close(gate[1]);
  if (read(gate[0], &c, 1) < 0) die("wait for the parent");
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) die("make / private");
  if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL)) die("bind rootfs");
  snprintf(proc, sizeof proc, "%s/proc", rootfs);
  if (mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)) die("mount proc");
  if (chdir(rootfs)) die("chdir rootfs");
  if (syscall(SYS_pivot_root, ".", ".")) die("pivot_root");
  if (umount2(".", MNT_DETACH)) die("umount old root");
  if (chdir("/")) die("chdir /");
  char *argv[] = {"true", NULL};
  char *envp[] = {"PATH=/bin", NULL};
  execve("/bin/true", argv, envp);
  die("exec /bin/true");
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: floor ROOTFS [CGROUP_DIR...]\n"); return 2; }
  rootfs = argv[1];
  if (pipe(gate)) { perror("pipe"); return 125; }
  for (int i = 2; i < argc; i++) {
    if (mkdir(argv[i], 0755) && errno != EEXIST) { perror(argv[i]); return 125; }
    /* A new v1 cpuset cgroup has empty cpus/mems: copy the parent's. */
    for (int k = 0; k < 2; k++) {
      const char *f = k ? "cpuset.mems" : "cpuset.cpus";
      char path[4096], val[4096];
      snprintf(path, sizeof path, "%s/../%s", argv[i], f);
      int fd = open(path, O_RDONLY);
      if (fd < 0) continue;
      ssize_t n = read(fd, val, sizeof val);
      close(fd);
      snprintf(path, sizeof path, "%s/%s", argv[i], f);
      fd = open(path, O_WRONLY);
      if (fd >= 0 && n > 0 && write(fd, val, n) != n) perror(path);
      if (fd >= 0) close(fd);
    }
  }
  int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC |
              CLONE_NEWNET | CLONE_NEWCGROUP | SIGCHLD;
  pid_t pid = clone(child, stack + sizeof stack, flags, NULL);
  if (pid < 0) { perror("clone"); return 125; }
  close(gate[0]);
  for (int i = 2; i < argc; i++) {
    char path[4096], buf[32];
    snprintf(path, sizeof path, "%s/cgroup.procs", argv[i]);
    int fd = open(path, O_WRONLY);
    int n = snprintf(buf, sizeof buf, "%d", pid);
    if (fd < 0 || write(fd, buf, n) != n) { perror(path); kill(pid, SIGKILL); }
    if (fd >= 0) close(fd);
  }
  close(gate[1]); /* EOF: go on */
  int status;
  if (waitpid(pid, &status, 0) < 0) { perror("waitpid"); return 125; }
  for (int i = 2; i < argc; i++) rmdir(argv[i]);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
