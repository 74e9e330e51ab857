/*
 * Writes the seccomp BPF program every function sandbox runs under (bwrap --seccomp FD).
 * Built and run by scripts/build-seccomp.sh at build time, with libseccomp (Debian
 * libseccomp-dev), for the architecture it is built on.
 *
 * Default allow; then, after Docker's default profile (SANDBOX.md):
 *   - socket() of any family but AF_UNIX        -> EACCES   (no network, whatever the netns)
 *   - clone() with any CLONE_NEW* flag          -> EPERM    (no new namespaces)
 *   - clone3()                                  -> ENOSYS   (its flags sit in memory where a
 *                                                            filter cannot look; libc falls back to clone)
 *   - ptrace, mount, keyctl, bpf, unshare, setns, io_uring, module and clock
 *     syscalls, and the rest of the list below  -> EPERM
 *
 * Usage: filter OUT.bpf [OUT.json]
 * The second file, if given, holds the same rules as an OCI runtime-spec `linux.seccomp`
 * object, for container mode (runc/crun install it themselves and take no BPF).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static const char *const denied[] = {
  "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module", "delete_module",
  "finit_module", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "get_kernel_syms",
  "get_mempolicy", "init_module", "io_uring_enter", "io_uring_register", "io_uring_setup", "ioperm",
  "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mbind", "mount",
  "mount_setattr", "move_mount", "move_pages", "name_to_handle_at", "nfsservctl", "open_by_handle_at",
  "open_tree", "perf_event_open", "personality", "pivot_root", "process_vm_readv", "process_vm_writev",
  "ptrace", "query_module", "quotactl", "quotactl_fd", "reboot", "request_key", "set_mempolicy",
  "setns", "settimeofday", "stime", "swapoff", "swapon", "syslog", "sysfs", "umount", "umount2",
  "unshare", "uselib", "userfaultfd", "ustat", "vhangup", "vm86", "vm86old", "_sysctl", "chroot",
};

static const unsigned long namespace_flags[] = {
  CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
  CLONE_NEWTIME,
};

static int fail(const char *what, int rc);

/* The OCI profile: the same rules as the BPF program, in runtime-spec JSON. */
static int write_oci(const char *file) {
  FILE *f = fopen(file, "w");
  if (!f) return fail(file, errno);
  fprintf(f, "{\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[\n{\"names\":[");
  int first = 1;
  for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++) {
    if (seccomp_syscall_resolve_name(denied[i]) == __NR_SCMP_ERROR) continue;
    fprintf(f, "%s\"%s\"", first ? "" : ",", denied[i]);
    first = 0;
  }
  fprintf(f, "],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":%d},\n", EPERM);
  fprintf(f, "{\"names\":[\"socket\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":%d,"
             "\"args\":[{\"index\":0,\"value\":%d,\"op\":\"SCMP_CMP_NE\"}]},\n", EACCES, AF_UNIX);
  for (size_t i = 0; i < sizeof namespace_flags / sizeof namespace_flags[0]; i++) {
    fprintf(f, "{\"names\":[\"clone\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":%d,"
               "\"args\":[{\"index\":0,\"value\":%lu,\"valueTwo\":%lu,\"op\":\"SCMP_CMP_MASKED_EQ\"}]},\n",
            EPERM, namespace_flags[i], namespace_flags[i]);
  }
  fprintf(f, "{\"names\":[\"clone3\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":%d}\n]}\n", ENOSYS);
  if (fclose(f) != 0) return fail(file, errno);
  return 0;
}

static int fail(const char *what, int rc) {
  fprintf(stderr, "seccomp filter: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 2 && argc != 3) {
    fprintf(stderr, "usage: %s OUT.bpf [OUT.json]\n", argv[0]);
    return 2;
  }
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (!ctx) return fail("seccomp_init", ENOMEM);
  int rc;

  for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++) {
    int nr = seccomp_syscall_resolve_name(denied[i]);
    if (nr == __NR_SCMP_ERROR) continue; /* not a syscall on this architecture */
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0)) < 0) return fail(denied[i], rc);
  }
  if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_NE, AF_UNIX))) < 0)
    return fail("socket", rc);
  for (size_t i = 0; i < sizeof namespace_flags / sizeof namespace_flags[0]; i++) {
    unsigned long flag = namespace_flags[i];
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag))) < 0)
      return fail("clone", rc);
  }
  if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0)) < 0) return fail("clone3", rc);

  int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return fail(argv[1], errno);
  if ((rc = seccomp_export_bpf(ctx, fd)) < 0) return fail("seccomp_export_bpf", rc);
  close(fd);
  seccomp_release(ctx);
  return argc == 3 ? write_oci(argv[2]) : 0;
}
