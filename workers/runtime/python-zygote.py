# The python zygote: a fork server that has imported python-host.py and the standard library a
# function usually needs, so a python instance starts as a fork (a few ms) instead of a new
# interpreter in a new sandbox (~40 ms). Run by the worker, as root, on the host, with a clean
# environment; it is never reachable from a sandbox.
#
# Each child isolates itself before it runs any function code, as bwrap would (SANDBOX.md):
#   into the instance's cgroups -> new mount, PID, network, IPC and UTS namespaces -> fork (the
#   grandchild is pid 1 of the new PID namespace; the child waits for it, as bwrap's monitor
#   does) -> a new root: a tmpfs with /usr, /etc/ld.so.cache, the runtime hosts and the code bound
#   read-only, a sized /tmp, /proc, a minimal /dev -> connect to the worker's channel socket ->
#   pivot_root, root read-only -> rlimits -> uid/gid 65534, no groups, no capabilities ->
#   no-new-privileges -> the seccomp filter of process mode -> serve().
#
# Moving a process into a cgroup waits for an RCU grace period (~10-15 ms here) unless another
# move happened just before, so the zygote keeps a "cell" ready: a child already in its
# instance's cgroups and namespaces, waiting on a pipe for its function. A start that finds no
# cell forks one on the spot.
#
# Protocol with the worker, one JSON object per line:
#   stdin:  {"t": "cell", "id", "cgroups": [dir]}
#           {"t": "start", "id", "cell" (an id, optional), "channel", "entry", "handler", "key", "memoryMb",
#            "mounts": [[host, inside]], "env" (all of it), "cgroups": [dir], "tmpBytes",
#            "shmBytes", "openFiles", "fileSize"}
#   stdout: {"t": "cell", "id", "pid"}
#           {"t": "started", "id", "pid"} | {"t": "failed", "id", "message"}
#           {"t": "exit", "pid", "code", "signal"}   (pid: the child the worker was given)
# Usage: python3 python-zygote.py RUNTIME_DIR SECCOMP_FILTER ROOT_DIR
import ctypes
import importlib.util
import json
import os
import resource
import selectors
import signal
import socket
import sys

# What functions commonly import, loaded once here so a child does not (besides the host's own).
import base64, collections, datetime, decimal, functools, hashlib, hmac, itertools, math, random, re, string, time, uuid  # noqa: E401,F401

RUNTIME_DIR, FILTER, ROOT = sys.argv[1], sys.argv[2], sys.argv[3]
spec = importlib.util.spec_from_file_location("python_host", os.path.join(RUNTIME_DIR, "python-host.py"))
host = importlib.util.module_from_spec(spec)
spec.loader.exec_module(host)

libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x4000000, 0x8000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 1, 4, 24, 38, 22, 2
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}[os.uname().machine]
NOBODY = 65534


def check(rc, what):
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (what, os.strerror(err)))


def mount(source, target, fstype, flags, data=None):
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    check(libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), "mount %s" % target)


def bind(source, inside, read_only=True):
    target = ROOT + inside
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        open(target, "a").close()
    mount(source, target, None, MS_BIND | MS_REC)
    if read_only:
        mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def build_root(req):
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", ROOT, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    bind("/usr", "/usr")
    for link, target in (("bin", "usr/bin"), ("lib", "usr/lib"), ("lib64", "usr/lib64"), ("sbin", "usr/sbin")):
        if os.path.exists("/" + target):
            os.symlink(target, os.path.join(ROOT, link))
    bind("/etc/ld.so.cache", "/etc/ld.so.cache")
    for extra in ("/etc/ssl", "/etc/localtime"):
        if os.path.exists(extra):
            bind(extra, extra)
    bind(RUNTIME_DIR, "/faas")
    for source, inside in req["mounts"]:
        bind(source, inside)
    for d in ("tmp", "proc", "dev"):
        os.mkdir(os.path.join(ROOT, d))
    mount("tmpfs", ROOT + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=%d,mode=1777" % req["tmpBytes"])
    mount("proc", ROOT + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    mount("tmpfs", ROOT + "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=755")
    for dev in ("null", "zero", "full", "random", "urandom"):
        bind("/dev/" + dev, "/dev/" + dev, read_only=False)
    os.symlink("/proc/self/fd", ROOT + "/dev/fd")
    os.mkdir(ROOT + "/dev/shm")
    mount("tmpfs", ROOT + "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=%d,mode=1777" % req["shmBytes"])
    mount(None, ROOT + "/dev", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC)  # device nodes stay writable


def isolate_and_serve(req):
    """In the grandchild, pid 1 of its PID namespace, as root: becomes the sandbox and serves."""
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    build_root(req)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(req["channel"])
    with open(FILTER, "rb") as f:
        bpf = f.read()
    os.chdir(ROOT)
    check(libc.syscall(SYS_PIVOT_ROOT, b".", b"."), "pivot_root")
    check(libc.umount2(b".", MNT_DETACH), "umount2")
    os.chdir("/")
    mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    socket.sethostname("faas")
    resource.setrlimit(resource.RLIMIT_NOFILE, (req["openFiles"], req["openFiles"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (req["fileSize"], req["fileSize"]))
    for cap in range(64):  # the bounding set too, not only what setuid clears
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break  # EINVAL: past the last capability this kernel has
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)  # from root to 65534: every capability is dropped
    # A change of uid leaves a process undumpable: its /proc/self files stay root's. A process
    # bwrap execs as 65534 can read its own; so can this one.
    check(libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "dumpable")
    check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    filters = ctypes.create_string_buffer(bpf, len(bpf))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = SockFprog(len(bpf) // 8, ctypes.addressof(filters))
    check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0), "seccomp")
    # Only the channel stays open (as fd 3, as in a bwrap sandbox); stdout and stderr go where
    # the zygote's stderr goes (the worker's log), never onto the zygote's protocol pipe.
    os.dup2(conn.fileno(), 3)
    conn.close()
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    os.closerange(4, 65536)
    os.environ.clear()
    os.environ.update(req["env"])
    os.chdir("/tmp")
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))  # pid 1: no default action for it
    host.serve(socket.socket(fileno=3), req["entry"], req["handler"], req["key"], str(req["memoryMb"]))


def prepare(cgroups):
    """In a fresh fork of the zygote: into the instance's cgroups and new namespaces."""
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.dup2(os.open("/dev/null", os.O_RDWR), 0)
    os.dup2(2, 1)  # off the zygote's protocol pipe, in this process and all it forks
    for cg in cgroups:  # first: everything from here on is limited and accounted
        with open(os.path.join(cg, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
    os.setsid()
    check(libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")


def cell(cgroups, requests):
    """A prepared child: waits for its function on the `requests` pipe; never returns."""
    try:
        prepare(cgroups)
        data = b""
        while not data.endswith(b"\n"):
            chunk = os.read(requests, 65536)
            if not chunk:
                os._exit(0)  # never used: the worker or the zygote went away
            data += chunk
        os.close(requests)
        run(json.loads(data))
    except BaseException as err:  # noqa: B902
        sys.stderr.write("python zygote: cell: %s\n" % err)
        os._exit(127)


def child(req):
    """Runs in a fresh fork of the zygote; never returns."""
    try:
        prepare(req["cgroups"])
        run(req)
    except BaseException as err:  # noqa: B902
        sys.stderr.write("python zygote: instance %s: %s\n" % (req.get("id"), err))
        os._exit(127)


def run(req):
    """Forks the sandbox (pid 1 of the new PID namespace) and waits for it; never returns."""
    pid = os.fork()
    if pid == 0:
        try:
            isolate_and_serve(req)
        except SystemExit:
            pass
        except BaseException as err:  # noqa: B902 - report anything, then end
            sys.stderr.write("python zygote: instance %s: %s\n" % (req["id"], err))
            os._exit(127)
        os._exit(0)
    # The monitor: waits for the sandbox and ends with its status, like bwrap's.
    os.closerange(3, 65536)
    _, status = os.waitpid(pid, 0)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


def reply(msg):
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def fork(req, sel, then):
    """Forks: the child closes the zygote's selector and runs `then` (never returns); the parent gets the pid, or None once it has said why not."""
    try:
        pid = os.fork()
    except OSError as err:
        reply({"t": "failed", "id": req["id"], "message": "fork: %s" % err})
        return None
    if pid == 0:
        sel.close()
        then()
    return pid


def handle(req, cells, sel):
    if req["t"] == "cell":
        r, w = os.pipe()
        pid = fork(req, sel, lambda: (os.close(w), cell(req["cgroups"], r)))
        os.close(r)
        if pid is None:
            os.close(w)
        else:
            cells[req["id"]] = (pid, w)
            reply({"t": "cell", "id": req["id"], "pid": pid})
        return
    ready = cells.pop(req.get("cell"), None)
    if ready is not None:
        pid, w = ready
        try:
            os.write(w, json.dumps(req).encode() + b"\n")  # well under a pipe's 64 KiB
            os.close(w)
            reply({"t": "started", "id": req["id"], "pid": pid})
            return
        except OSError:
            os.close(w)  # the cell died: start without one
    pid = fork(req, sel, lambda: child(req))
    if pid is not None:
        reply({"t": "started", "id": req["id"], "pid": pid})


def main():
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # the worker gone, even by SIGKILL: so are we
    os.makedirs(ROOT, exist_ok=True)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    sel = selectors.DefaultSelector()
    sel.register(sys.stdin, selectors.EVENT_READ, "stdin")
    sel.register(wake_r, selectors.EVENT_READ, "child")
    pending = b""
    cells = {}  # cell id -> (pid, the write end of its request pipe)
    while True:
        for key, _ in sel.select():
            if key.data == "child":
                os.read(wake_r, 4096)
                while True:
                    try:
                        pid, status = os.waitpid(-1, os.WNOHANG)
                    except ChildProcessError:
                        break
                    if pid == 0:
                        break
                    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
                    reply({"t": "exit", "pid": pid, "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None, "signal": sig})
                continue
            chunk = os.read(sys.stdin.fileno(), 65536)
            if not chunk:
                return  # the worker closed our stdin: it is stopping
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                handle(json.loads(line), cells, sel)


main()
