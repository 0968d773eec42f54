#!/usr/bin/env python3
"""hull's own OCI runtime conformance suite.

Written from the MUST/SHOULD clauses of the OCI runtime-spec 1.2
(runtime.md, config.md, config-linux.md). It drives any runc-compatible
runtime binary through its CLI (create/start/state/kill/delete/run with a
private --root), builds a busybox bundle per clause, and checks what the
container and the state show.

    bash conformance/run.sh                 # RUNTIME=hull (the repo's binary)
    RUNTIME=runc bash conformance/run.sh    # or a path to any runtime
    bash conformance/run.sh --compare       # hull and runc side by side
    bash conformance/run.sh -k hooks        # only clauses whose id contains "hooks"
    bash conformance/run.sh --list          # the clauses

Environment: RUNTIME (hull | runc | a path; default hull), HULL_BIN (use this
hull binary instead of building the repo's with cargo, which honours
CARGO_TARGET_DIR), COMPARE_RUNTIME (the other side of --compare; default
runc), BUSYBOX (default /bin/busybox), HULLCONF_DEBUG=1 (tracebacks).

One line per clause: `PASS|FAIL|SKIP <clause id> <short text>` (with the reason
after " -- " on failure or skip), then exactly `N passed, M failed, K skipped`.
Exit status: 0 if nothing failed, 1 otherwise; with --compare, 1 only if
the runtime under test fails a clause the comparison runtime passes (a
failure both share is a limit of the machine or a shared bug, and is listed).

Needs root and a static busybox at /bin/busybox (Debian: busybox-static).
Uses only the Python 3 standard library.
"""

import argparse
import array
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BUSYBOX = os.environ.get("BUSYBOX", "/bin/busybox")
CMD_TIMEOUT = 30
STATE_TIMEOUT = 15
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Fail(Exception):
    pass


class Skip(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


# ---------------------------------------------------------------------------
# Runtime resolution
# ---------------------------------------------------------------------------

def build_hull():
    """Build the repo's hull binary (debug profile, incremental) and return
    its path; honours CARGO_TARGET_DIR."""
    cmd = ["cargo", "build", "--quiet", "--bin", "hull", "--message-format=json"]
    p = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        raise SystemExit("hullconf: cargo build of hull failed")
    exe = None
    for line in p.stdout.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") == "compiler-artifact" and msg.get("executable") and \
                msg.get("target", {}).get("name") == "hull":
            exe = msg["executable"]
    if not exe:
        raise SystemExit("hullconf: cargo build did not report the hull binary")
    return exe


def resolve_runtime(name):
    """hull -> $HULL_BIN or the repo's freshly built binary; runc -> runc in
    PATH; anything else -> a path or a command name."""
    if name == "hull":
        if os.environ.get("HULL_BIN"):
            return os.path.abspath(os.environ["HULL_BIN"])
        return build_hull()
    if os.sep in name:
        return os.path.abspath(name)
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")
    if not found:
        raise SystemExit("hullconf: runtime %r not found" % name)
    return found


# ---------------------------------------------------------------------------
# Bundles and the runtime under test
# ---------------------------------------------------------------------------

def make_rootfs_template(path):
    """A busybox rootfs: /bin/busybox plus a symlink per applet."""
    for d in ("bin", "dev", "proc", "sys", "tmp", "etc", "work", "root"):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    os.chmod(os.path.join(path, "tmp"), 0o1777)
    shutil.copy2(BUSYBOX, os.path.join(path, "bin", "busybox"))
    out = subprocess.run([BUSYBOX, "--list"], stdout=subprocess.PIPE, text=True, check=True).stdout
    for applet in out.split():
        if applet == "busybox":
            continue
        link = os.path.join(path, "bin", applet)
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    with open(os.path.join(path, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    with open(os.path.join(path, "etc", "group"), "w") as f:
        f.write("root:x:0:\nnogroup:x:65534:\n")


DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]


def base_config(args):
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": [PATH_ENV, "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: list(DEFAULT_CAPS) for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": "hullconf",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    }


def sh(script):
    return ["/bin/sh", "-c", script]


class Result:
    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err

    def kv(self):
        """Parse `key=value` lines of the container's stdout."""
        d = {}
        for line in self.out.splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                d[k.strip()] = v.strip()
        return d

    def brief(self):
        err = self.err.strip().splitlines()
        return "rc=%s stderr=%r" % (self.rc, err[-1][-300:] if err else "")


class Ctx:
    """One runtime under test, with its own --root and work directory."""

    counter = 0

    def __init__(self, name, binary, work, template):
        self.name, self.bin, self.template = name, binary, template
        self.work = tempfile.mkdtemp(prefix="hullconf-%s-" % name, dir=work)
        os.chmod(self.work, 0o755)
        self.root = os.path.join(self.work, "state")
        os.makedirs(self.root)
        self.ids = []
        self.cleanups = []

    # -- ids and bundles ----------------------------------------------------
    def new_id(self, tag):
        Ctx.counter += 1
        cid = "hc-%s-%d-%d" % (tag[:20], os.getpid(), Ctx.counter)
        self.ids.append(cid)
        return cid

    def bundle(self, tag, args):
        Ctx.counter += 1
        b = Bundle(os.path.join(self.work, "b-%s-%d" % (tag[:20], Ctx.counter)), self.template, args)
        return b

    # -- CLI ----------------------------------------------------------------
    def cmd(self, *args, timeout=CMD_TIMEOUT, **kw):
        argv = [self.bin, "--root", self.root] + list(args)
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, timeout=timeout, **kw)
        except subprocess.TimeoutExpired:
            return Result(-999, "", "timeout after %ss: %s" % (timeout, " ".join(args)))
        return Result(p.returncode, p.stdout, p.stderr)

    def create(self, b, cid, extra=()):
        """`create` with the container's stdio on files in the bundle (a pipe
        would keep the caller waiting for the container's EOF)."""
        b.write()
        with open(b.path("stdout"), "w") as o, open(b.path("stderr"), "w") as e:
            try:
                p = subprocess.run([self.bin, "--root", self.root, "create", "--bundle", b.dir]
                                   + list(extra) + [cid],
                                   stdin=subprocess.DEVNULL, stdout=o, stderr=e, timeout=CMD_TIMEOUT)
                rc = p.returncode
            except subprocess.TimeoutExpired:
                rc = -999
        return Result(rc, b.read("stdout"), b.read("stderr"))

    def run(self, b, tag="run", timeout=CMD_TIMEOUT):
        """`run` (create + start + wait) in the foreground; returns the
        container's exit status and output."""
        b.write()
        cid = self.new_id(tag)
        with open(b.path("stdout"), "w") as o, open(b.path("stderr"), "w") as e:
            try:
                p = subprocess.run([self.bin, "--root", self.root, "run", "--bundle", b.dir, cid],
                                   stdin=subprocess.DEVNULL, stdout=o, stderr=e, timeout=timeout)
                rc = p.returncode
            except subprocess.TimeoutExpired:
                rc = -999
        return Result(rc, b.read("stdout"), b.read("stderr"))

    def run_ok(self, b, tag="run"):
        r = self.run(b, tag)
        check(r.rc == 0, "container run failed: %s; stdout=%r" % (r.brief(), r.out[-300:]))
        return r

    def state(self, cid):
        r = self.cmd("state", cid)
        if r.rc != 0:
            return None, r
        try:
            return json.loads(r.out), r
        except ValueError:
            raise Fail("state output is not JSON: %r" % r.out[:200])

    def must_state(self, cid):
        st, r = self.state(cid)
        check(st is not None, "state %s failed: %s" % (cid, r.brief()))
        return st

    def wait_status(self, cid, want, timeout=STATE_TIMEOUT):
        deadline = time.time() + timeout
        st = None
        while time.time() < deadline:
            st, _ = self.state(cid)
            if st and st.get("status") == want:
                return st
            time.sleep(0.1)
        raise Fail("container did not reach status %r (last state %r)" % (want, st and st.get("status")))

    def cleanup(self):
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception:
                pass
        self.cleanups = []
        for cid in self.ids:
            self.cmd("kill", cid, "KILL", timeout=10)
            self.cmd("delete", "--force", cid, timeout=20)
        self.ids = []
        unmount_under(self.work)

    def destroy(self):
        self.cleanup()
        unmount_under(self.work)
        shutil.rmtree(self.work, ignore_errors=True)


class Bundle:
    def __init__(self, d, template, args):
        self.dir = d
        os.makedirs(d)
        os.chmod(d, 0o755)
        subprocess.run(["cp", "-a", template, os.path.join(d, "rootfs")], check=True)
        self.config = base_config(args)

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def rootfs(self, *p):
        return os.path.join(self.dir, "rootfs", *p)

    def read(self, name, rootfs=False):
        p = self.rootfs(name) if rootfs else self.path(name)
        try:
            with open(p) as f:
                return f.read()
        except OSError:
            return ""

    def write(self):
        with open(self.path("config.json"), "w") as f:
            json.dump(self.config, f, indent=1)

    @property
    def linux(self):
        return self.config["linux"]

    @property
    def process(self):
        return self.config["process"]

    def set_ns(self, types):
        self.linux["namespaces"] = [{"type": t} for t in types]


def unmount_under(path):
    """Lazily unmount whatever is mounted under `path` in our mount namespace
    (a runtime without a mount namespace mounts on the host), deepest first,
    so that removing the work directory never descends into a mount."""
    prefix = path.rstrip("/") + "/"
    try:
        with open("/proc/self/mountinfo") as f:
            points = [l.split()[4].replace("\\040", " ") for l in f]
    except OSError:
        return
    for mp in sorted((m for m in points if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def host_ns(kind):
    return os.readlink("/proc/self/ns/%s" % kind)


# ---------------------------------------------------------------------------
# Clauses
# ---------------------------------------------------------------------------

CLAUSES = []


def clause(cid, text):
    def deco(fn):
        CLAUSES.append((cid, text, fn))
        return fn
    return deco


LOOP = "trap 'exit 0' TERM; while true; do sleep 0.1; done"


# ---- runtime.md: lifecycle and operations ---------------------------------

@clause("runtime.create.not-run", "create MUST NOT run the user program; state is 'created'")
def _(c):
    b = c.bundle("create", sh("echo ran > /marker; " + LOOP))
    cid = c.new_id("create")
    r = c.create(b, cid)
    check(r.rc == 0, "create failed: %s" % r.brief())
    st = c.must_state(cid)
    check(st.get("status") == "created", "status after create is %r, want 'created'" % st.get("status"))
    time.sleep(0.5)
    check(not os.path.exists(b.rootfs("marker")), "the user program ran before start")


@clause("runtime.state.fields", "state has ociVersion, id, status, pid (host pid), bundle (absolute)")
def _(c):
    b = c.bundle("state", sh(LOOP))
    cid = c.new_id("state")
    r = c.create(b, cid)
    check(r.rc == 0, "create failed: %s" % r.brief())
    st = c.must_state(cid)
    for k in ("ociVersion", "id", "status", "pid", "bundle"):
        check(k in st, "state lacks %r: %r" % (k, st))
    check(st["id"] == cid, "state id %r != %r" % (st["id"], cid))
    check(isinstance(st["pid"], int) and st["pid"] > 0, "pid %r is not a positive int" % st["pid"])
    check(os.path.exists("/proc/%d" % st["pid"]), "pid %d is not a host process" % st["pid"])
    check(os.readlink("/proc/%d/ns/pid" % st["pid"]) != host_ns("pid"),
          "pid %d is not in the container's pid namespace" % st["pid"])
    check(st["bundle"] == b.dir, "bundle %r != %r (absolute path)" % (st["bundle"], b.dir))


@clause("runtime.state.annotations", "state.annotations equals config.annotations")
def _(c):
    b = c.bundle("annot", sh(LOOP))
    ann = {"org.hull.conf.a": "1", "com.example.key": "value with spaces"}
    b.config["annotations"] = ann
    cid = c.new_id("annot")
    r = c.create(b, cid)
    check(r.rc == 0, "create failed: %s" % r.brief())
    st = c.must_state(cid)
    check(st.get("annotations") == ann, "annotations %r != %r" % (st.get("annotations"), ann))


@clause("runtime.start.runs", "start MUST run the user program; state is 'running'")
def _(c):
    b = c.bundle("start", sh("echo ran > /marker; " + LOOP))
    cid = c.new_id("start")
    check(c.create(b, cid).rc == 0, "create failed")
    r = c.cmd("start", cid)
    check(r.rc == 0, "start failed: %s" % r.brief())
    deadline = time.time() + STATE_TIMEOUT
    while time.time() < deadline and not os.path.exists(b.rootfs("marker")):
        time.sleep(0.05)
    check(os.path.exists(b.rootfs("marker")), "the user program did not run after start")
    st = c.must_state(cid)
    check(st.get("status") == "running", "status %r, want 'running'" % st.get("status"))


@clause("runtime.state.stopped", "after the program exits, status is 'stopped'")
def _(c):
    b = c.bundle("stopped", ["true"])
    cid = c.new_id("stopped")
    check(c.create(b, cid).rc == 0, "create failed")
    check(c.cmd("start", cid).rc == 0, "start failed")
    c.wait_status(cid, "stopped")


@clause("runtime.start.not-created", "start of a running or stopped container MUST error")
def _(c):
    b = c.bundle("start2", sh(LOOP))
    cid = c.new_id("start2")
    check(c.create(b, cid).rc == 0, "create failed")
    check(c.cmd("start", cid).rc == 0, "start failed")
    c.wait_status(cid, "running")
    r = c.cmd("start", cid)
    check(r.rc != 0, "second start on a running container succeeded")
    check(c.must_state(cid).get("status") == "running", "second start changed the container")
    c.cmd("kill", cid, "KILL")
    c.wait_status(cid, "stopped")
    r = c.cmd("start", cid)
    check(r.rc != 0, "start on a stopped container succeeded")


@clause("runtime.create.dup-id", "create with an id in use MUST error and not affect the existing one")
def _(c):
    b = c.bundle("dup", sh(LOOP))
    cid = c.new_id("dup")
    check(c.create(b, cid).rc == 0, "create failed")
    pid = c.must_state(cid)["pid"]
    b2 = c.bundle("dup2", sh(LOOP))
    r = c.create(b2, cid)
    check(r.rc != 0, "second create with the same id succeeded")
    st = c.must_state(cid)
    check(st.get("pid") == pid and st.get("status") == "created" and st.get("bundle") == b.dir,
          "the existing container changed: %r" % st)


@clause("runtime.state.unknown", "state of an unknown id MUST error")
def _(c):
    r = c.cmd("state", "hc-no-such-container-%d" % os.getpid())
    check(r.rc != 0, "state of an unknown id succeeded")


@clause("runtime.create.error-leaves-nothing", "a failed create (bad root.path) errors and leaves no container")
def _(c):
    b = c.bundle("badroot", ["true"])
    b.config["root"]["path"] = "no-such-rootfs"
    cid = c.new_id("badroot")
    r = c.create(b, cid)
    check(r.rc != 0, "create with a missing root.path succeeded")
    st, _ = c.state(cid)
    check(st is None, "a container remains after the failed create: %r" % (st,))


@clause("runtime.kill.signal", "kill MUST send the given signal to the container process")
def _(c):
    b = c.bundle("kill", sh("trap 'echo USR1 > /sig; exit 0' USR1; echo up > /ready; while true; do sleep 0.1; done"))
    cid = c.new_id("kill")
    check(c.create(b, cid).rc == 0, "create failed")
    check(c.cmd("start", cid).rc == 0, "start failed")
    deadline = time.time() + STATE_TIMEOUT
    while time.time() < deadline and not os.path.exists(b.rootfs("ready")):
        time.sleep(0.05)
    r = c.cmd("kill", cid, "USR1")
    check(r.rc == 0, "kill USR1 failed: %s" % r.brief())
    c.wait_status(cid, "stopped")
    check(b.read("sig", rootfs=True).strip() == "USR1", "the process did not receive SIGUSR1")


@clause("runtime.kill.default-term", "kill without a signal sends SIGTERM (runc CLI default)")
def _(c):
    b = c.bundle("killterm", sh("trap 'echo TERM > /sig; exit 0' TERM; echo up > /ready; while true; do sleep 0.1; done"))
    cid = c.new_id("killterm")
    check(c.create(b, cid).rc == 0, "create failed")
    check(c.cmd("start", cid).rc == 0, "start failed")
    deadline = time.time() + STATE_TIMEOUT
    while time.time() < deadline and not os.path.exists(b.rootfs("ready")):
        time.sleep(0.05)
    check(c.cmd("kill", cid).rc == 0, "kill failed")
    c.wait_status(cid, "stopped")
    check(b.read("sig", rootfs=True).strip() == "TERM", "the process did not receive SIGTERM")


@clause("runtime.kill.stopped", "kill of a stopped container MUST error")
def _(c):
    b = c.bundle("killst", ["true"])
    cid = c.new_id("killst")
    check(c.create(b, cid).rc == 0, "create failed")
    check(c.cmd("start", cid).rc == 0, "start failed")
    c.wait_status(cid, "stopped")
    r = c.cmd("kill", cid, "KILL")
    check(r.rc != 0, "kill of a stopped container succeeded")
    check(c.must_state(cid).get("status") == "stopped", "kill changed the stopped container")


@clause("runtime.delete.running", "delete of a running container MUST error and leave it running")
def _(c):
    b = c.bundle("delrun", sh(LOOP))
    cid = c.new_id("delrun")
    check(c.create(b, cid).rc == 0, "create failed")
    check(c.cmd("start", cid).rc == 0, "start failed")
    c.wait_status(cid, "running")
    r = c.cmd("delete", cid)
    check(r.rc != 0, "delete of a running container succeeded")
    st = c.must_state(cid)
    check(st.get("status") == "running", "delete changed the container: %r" % st.get("status"))


@clause("runtime.delete.stopped", "delete of a stopped container removes it (state then errors)")
def _(c):
    b = c.bundle("delst", ["true"])
    cid = c.new_id("delst")
    check(c.create(b, cid).rc == 0, "create failed")
    check(c.cmd("start", cid).rc == 0, "start failed")
    c.wait_status(cid, "stopped")
    r = c.cmd("delete", cid)
    check(r.rc == 0, "delete failed: %s" % r.brief())
    st, _ = c.state(cid)
    check(st is None, "state still succeeds after delete")


@clause("runtime.delete.unknown", "delete of an unknown id MUST error")
def _(c):
    r = c.cmd("delete", "hc-no-such-container-%d" % os.getpid())
    check(r.rc != 0, "delete of an unknown id succeeded")


# ---- config.md: root, mounts ------------------------------------------------

@clause("config.root.path", "root.path relative to the bundle is the container's /")
def _(c):
    b = c.bundle("root", sh("cat /rootmark"))
    with open(b.rootfs("rootmark"), "w") as f:
        f.write("bundle-root\n")
    r = c.run_ok(b)
    check(r.out.strip() == "bundle-root", "container / is not the bundle's rootfs: %r" % r.out)


@clause("config.root.readonly", "root.readonly: the root filesystem MUST be read-only")
def _(c):
    b = c.bundle("rootro", sh("touch /x 2>/dev/null && echo w=yes || echo w=no; cat /proc/self/mountinfo"))
    b.config["root"]["readonly"] = True
    r = c.run_ok(b)
    check(r.kv().get("w") == "no", "write to / succeeded")
    line = root_mount_line(r.out)
    check("ro" in line.split()[5].split(","), "/ is not mounted ro: %r" % line)


@clause("config.mounts.order", "mounts MUST be made in order (later mounts over earlier ones)")
def _(c):
    h1 = tempfile.mkdtemp(dir=c.work)
    h2 = tempfile.mkdtemp(dir=c.work)
    open(os.path.join(h1, "one"), "w").close()
    open(os.path.join(h2, "two"), "w").close()
    b = c.bundle("order", sh("ls /m; grep -n ' /a' /proc/self/mountinfo | cut -d' ' -f1,5"))
    b.config["mounts"] += [
        {"destination": "/m", "type": "bind", "source": h1, "options": ["bind"]},
        {"destination": "/m", "type": "bind", "source": h2, "options": ["bind"]},
        {"destination": "/a", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/a/b", "type": "tmpfs", "source": "tmpfs"},
    ]
    r = c.run_ok(b)
    lines = r.out.split()
    check("two" in lines and "one" not in lines, "/m shows %r, want the second mount's 'two'" % lines)
    check(r.out.find(" /a\n") < r.out.find(" /a/b") and " /a/b" in r.out, "/a, /a/b not mounted in order: %r" % r.out)


@clause("config.mounts.create-destination", "a missing mount destination is created (runc behaviour)")
def _(c):
    b = c.bundle("mkdest", sh("grep -c ' /new/deep/dir ' /proc/self/mountinfo"))
    b.config["mounts"].append({"destination": "/new/deep/dir", "type": "tmpfs", "source": "tmpfs"})
    r = c.run_ok(b)
    check(r.out.strip() == "1", "tmpfs not mounted on the created /new/deep/dir")


@clause("config.mounts.bind-ro", "bind mount with 'ro' is read-only; options honoured")
def _(c):
    h = tempfile.mkdtemp(dir=c.work)
    with open(os.path.join(h, "f"), "w") as f:
        f.write("hostdata\n")
    b = c.bundle("bindro", sh("echo c=$(cat /hb/f); touch /hb/x 2>/dev/null && echo w=yes || echo w=no"))
    b.config["mounts"].append({"destination": "/hb", "type": "bind", "source": h, "options": ["rbind", "ro"]})
    r = c.run_ok(b)
    kv = r.kv()
    check(kv.get("c") == "hostdata", "bind mount content not visible: %r" % r.out)
    check(kv.get("w") == "no", "write to a ro bind mount succeeded")
    check(not os.path.exists(os.path.join(h, "x")), "file created on the host through a ro bind")


@clause("config.mounts.tmpfs-options", "tmpfs mount with options (mode, size, nosuid)")
def _(c):
    b = c.bundle("tmpfsopt", sh("stat -c m=%a /t; grep ' /t ' /proc/self/mountinfo"))
    b.config["mounts"].append({"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                               "options": ["nosuid", "nodev", "mode=1770", "size=4m"]})
    r = c.run_ok(b)
    check(r.kv().get("m") == "1770", "mode %r, want 1770" % r.kv().get("m"))
    check("nosuid" in r.out and "nodev" in r.out and "size=4096k" in r.out,
          "options not applied: %r" % r.out)


@clause("config.mounts.recursive-options", "rro, rnosuid, rnodev, rnoexec apply to a bind source's submounts too (spec 1.1)")
def _(c):
    h = tempfile.mkdtemp(dir=c.work)
    os.makedirs(os.path.join(h, "sub"))
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", os.path.join(h, "sub")], check=True)
    c.cleanups.append(lambda: subprocess.run(["umount", "-l", os.path.join(h, "sub")]))
    b = c.bundle("rattr", sh("grep -E ' /rb(/sub)? ' /proc/self/mountinfo | cut -d' ' -f5,6"))
    b.config["mounts"].append({"destination": "/rb", "type": "bind", "source": h,
                               "options": ["rbind", "rro", "rnosuid", "rnodev", "rnoexec"]})
    r = c.run_ok(b)
    got = dict(l.split(" ", 1) for l in r.out.splitlines() if " " in l)
    for mp in ("/rb", "/rb/sub"):
        flags = got.get(mp, "").split(",")
        check(all(f in flags for f in ("ro", "nosuid", "nodev", "noexec")),
              "%s has %r, want ro,nosuid,nodev,noexec" % (mp, got.get(mp)))


@clause("config.mounts.idmap", "a bind mount's uidMappings/gidMappings idmap it: a file of uid 1000 shows as 0 (spec 1.2)")
def _(c):
    h = tempfile.mkdtemp(dir=c.work)
    os.chmod(h, 0o755)  # its owner (root) is not in the mapping
    f = os.path.join(h, "f")
    open(f, "w").close()
    os.chown(f, 1000, 1000)
    b = c.bundle("idmap", sh("stat -c id=%u:%g /im/f"))
    m = [{"containerID": 1000, "hostID": 0, "size": 1}]
    b.config["mounts"].append({"destination": "/im", "type": "bind", "source": h,
                               "options": ["rbind"], "uidMappings": m, "gidMappings": m})
    r = c.run_ok(b)
    check(r.kv().get("id") == "0:0", "the file shows as %r, want 0:0" % r.kv().get("id"))


# ---- config.md: process -----------------------------------------------------

@clause("config.process.args", "process.args run with args[0] found via PATH in process.env")
def _(c):
    b = c.bundle("args", ["echo", "a b", "c"])
    r = c.run_ok(b)
    check(r.out == "a b c\n", "output %r, want 'a b c'" % r.out)


@clause("config.process.env", "process.env is exactly the environment of the process")
def _(c):
    b = c.bundle("env", ["env"])
    b.process["env"] = [PATH_ENV, "FOO=bar baz", "EMPTY="]
    r = c.run_ok(b)
    got = sorted(l for l in r.out.splitlines() if l)
    want = sorted([PATH_ENV, "FOO=bar baz", "EMPTY="])
    # runc adds HOME when missing (from /etc/passwd): allow HOME only.
    extra = [l for l in got if l not in want and not l.startswith("HOME=")]
    check(all(w in got for w in want) and not extra, "env %r, want %r" % (got, want))


@clause("config.process.cwd", "process.cwd is the working directory")
def _(c):
    b = c.bundle("cwd", ["pwd"])
    b.process["cwd"] = "/work"
    r = c.run_ok(b)
    check(r.out.strip() == "/work", "cwd %r, want /work" % r.out.strip())


@clause("config.process.user", "process.user uid, gid and additionalGids are applied")
def _(c):
    b = c.bundle("user", sh("grep -E '^(Uid|Gid|Groups):' /proc/self/status"))
    b.process["user"] = {"uid": 1234, "gid": 2345, "additionalGids": [10, 20]}
    r = c.run_ok(b)
    lines = {l.split(":")[0]: l.split(":")[1].split() for l in r.out.splitlines() if ":" in l}
    check(lines.get("Uid") == ["1234"] * 4, "Uid %r" % lines.get("Uid"))
    check(lines.get("Gid") == ["2345"] * 4, "Gid %r" % lines.get("Gid"))
    check(sorted(lines.get("Groups", [])) in (["10", "20"], ["10", "20", "2345"]),
          "Groups %r, want 10 20" % lines.get("Groups"))


@clause("config.process.umask", "process.user.umask is applied")
def _(c):
    b = c.bundle("umask", ["sh", "-c", "umask"])
    b.process["user"]["umask"] = 0o027
    r = c.run_ok(b)
    check(r.out.strip() == "0027", "umask %r, want 0027" % r.out.strip())


@clause("config.process.rlimits", "process.rlimits set soft and hard limits")
def _(c):
    b = c.bundle("rlim", sh("grep -E 'Max (open files|processes)' /proc/self/limits"))
    b.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 1000, "hard": 2000},
                            {"type": "RLIMIT_NPROC", "soft": 500, "hard": 600}]
    r = c.run_ok(b)
    nofile = [l.split()[3:5] for l in r.out.splitlines() if "open files" in l]
    nproc = [l.split()[2:4] for l in r.out.splitlines() if "processes" in l]
    check(nofile == [["1000", "2000"]], "RLIMIT_NOFILE %r, want 1000 2000" % nofile)
    check(nproc == [["500", "600"]], "RLIMIT_NPROC %r, want 500 600" % nproc)


def caps_mask(names):
    nums = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7,
            "CAP_NET_BIND_SERVICE": 10, "CAP_NET_RAW": 13, "CAP_SYS_ADMIN": 21}
    m = 0
    for n in names:
        m |= 1 << nums[n]
    return m


def read_caps(out):
    caps = {}
    for l in out.splitlines():
        if l.startswith("Cap"):
            k, v = l.split(":")
            caps[k] = int(v.strip(), 16)
    return caps


@clause("config.process.capabilities", "process.capabilities sets bounding/effective/permitted/inheritable")
def _(c):
    b = c.bundle("caps", sh("grep ^Cap /proc/self/status"))
    b.process["capabilities"] = {"bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"],
                                 "effective": ["CAP_CHOWN", "CAP_KILL"],
                                 "permitted": ["CAP_CHOWN", "CAP_KILL"],
                                 "inheritable": ["CAP_KILL"]}
    r = c.run_ok(b)
    caps = read_caps(r.out)
    want = {"CapBnd": caps_mask(["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"]),
            "CapEff": caps_mask(["CAP_CHOWN", "CAP_KILL"]),
            "CapPrm": caps_mask(["CAP_CHOWN", "CAP_KILL"]),
            "CapInh": caps_mask(["CAP_KILL"]), "CapAmb": 0}
    for k, v in want.items():
        check(caps.get(k) == v, "%s=%#x, want %#x" % (k, caps.get(k, -1), v))


@clause("config.process.capabilities-ambient", "ambient capabilities survive for a non-root user")
def _(c):
    b = c.bundle("ambient", sh("grep ^Cap /proc/self/status"))
    b.process["user"] = {"uid": 1000, "gid": 1000}
    caps = ["CAP_NET_BIND_SERVICE"]
    b.process["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted", "inheritable", "ambient")}
    r = c.run_ok(b)
    got = read_caps(r.out)
    m = caps_mask(caps)
    for k in ("CapEff", "CapPrm", "CapAmb"):
        check(got.get(k) == m, "%s=%#x, want %#x" % (k, got.get(k, -1), m))


@clause("config.process.noNewPrivileges", "noNewPrivileges sets no_new_privs (true and false)")
def _(c):
    for val, want in ((True, "1"), (False, "0")):
        b = c.bundle("nnp", sh("grep NoNewPrivs /proc/self/status"))
        b.process["noNewPrivileges"] = val
        r = c.run_ok(b)
        got = r.out.split()[-1] if r.out.split() else ""
        check(got == want, "noNewPrivileges=%s: NoNewPrivs %r, want %s" % (val, got, want))


@clause("config.process.oomScoreAdj", "process.oomScoreAdj is written to oom_score_adj")
def _(c):
    b = c.bundle("oom", ["cat", "/proc/self/oom_score_adj"])
    b.process["oomScoreAdj"] = 123
    r = c.run_ok(b)
    check(r.out.strip() == "123", "oom_score_adj %r, want 123" % r.out.strip())


def recv_fd(conn):
    fds = array.array("i")
    msg, anc, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(4 * fds.itemsize))
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - (len(data) % fds.itemsize)])
    return fds[0] if fds else None


def run_with_terminal(c, b, tag):
    """create with --console-socket, receive the pty master, start, and
    return everything the container wrote to its terminal."""
    b.process["terminal"] = True
    b.write()
    sockpath = b.path("console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sockpath)
    srv.listen(1)
    srv.settimeout(CMD_TIMEOUT)
    c.cleanups.append(srv.close)
    cid = c.new_id(tag)
    p = subprocess.Popen([c.bin, "--root", c.root, "create", "--bundle", b.dir, "--console-socket", sockpath, cid],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        conn, _ = srv.accept()
    except socket.timeout:
        p.kill()
        raise Fail("no connection on the console socket")
    fd = recv_fd(conn)
    conn.close()
    out, err = p.communicate(timeout=CMD_TIMEOUT)
    check(p.returncode == 0, "create failed: %s" % err.strip()[-200:])
    check(fd is not None, "no fd received on the console socket")
    c.cleanups.append(lambda: os.close(fd))
    check(c.cmd("start", cid).rc == 0, "start failed")
    data = b""
    deadline = time.time() + STATE_TIMEOUT
    os.set_blocking(fd, False)
    while time.time() < deadline:
        try:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            data += chunk
        except BlockingIOError:
            st, _ = c.state(cid)
            if st and st.get("status") == "stopped":
                time.sleep(0.1)
                try:
                    data += os.read(fd, 4096)
                except OSError:
                    pass
                break
            time.sleep(0.05)
        except OSError:
            break
    return data.decode(errors="replace").replace("\r", "")


@clause("config.process.terminal", "terminal: stdio is a pty sent over --console-socket; /dev/console is a char device")
def _(c):
    b = c.bundle("tty", sh("tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo isatty=yes; ls -l /dev/console | cut -c1"))
    text = run_with_terminal(c, b, "tty")
    check("isatty=yes" in text, "stdio is not a terminal: %r" % text)
    check("/dev/pts/" in text or "/dev/console" in text, "tty name: %r" % text)
    lines = text.splitlines()
    check(lines and lines[-1].strip() == "c", "/dev/console is not a character device: %r" % text)


@clause("config.process.consoleSize", "process.consoleSize sets the terminal's rows and columns")
def _(c):
    b = c.bundle("ttysize", sh("stty size 2>&1"))
    b.process["consoleSize"] = {"height": 33, "width": 101}
    text = run_with_terminal(c, b, "ttysize")
    check("33 101" in text, "stty size shows %r, want '33 101'" % text.strip())


@clause("config.hostname", "hostname is set in the new UTS namespace")
def _(c):
    b = c.bundle("host", ["hostname"])
    b.config["hostname"] = "conf-host-1"
    r = c.run_ok(b)
    check(r.out.strip() == "conf-host-1", "hostname %r" % r.out.strip())


@clause("config.domainname", "domainname is set in the new UTS namespace")
def _(c):
    b = c.bundle("domain", ["cat", "/proc/sys/kernel/domainname"])
    b.config["domainname"] = "conf.example"
    r = c.run_ok(b)
    check(r.out.strip() == "conf.example", "domainname %r" % r.out.strip())


# ---- config.md: hooks -------------------------------------------------------

def hook_config(b, kinds_fail=()):
    """Every hook appends its name (and its stdin state) to a log; hooks that
    run in the container namespace after pivot_root use the container path."""
    log_host = b.rootfs("hooklog")
    hooks = {}
    for kind in ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"):
        log = "/hooklog" if kind == "startContainer" else log_host
        state = ("/hookstate-%s.json" % kind) if kind == "startContainer" else b.rootfs("hookstate-%s.json" % kind)
        script = "cat > %s; echo %s >> %s" % (state, kind, log)
        if kind in kinds_fail:
            script += "; exit 3"
        hooks[kind] = [{"path": "/bin/sh", "args": ["sh", "-c", script]}]
    b.config["hooks"] = hooks


@clause("config.hooks.create-order", "create runs prestart, createRuntime, createContainer in order; start runs startContainer before the program")
def _(c):
    b = c.bundle("hooks", sh("echo program >> /hooklog; sleep 1"))
    hook_config(b)
    b.config["hooks"].pop("poststart")
    cid = c.new_id("hooks")
    r = c.create(b, cid)
    check(r.rc == 0, "create failed: %s" % r.brief())
    after_create = b.read("hooklog", rootfs=True).split()
    check(after_create == ["prestart", "createRuntime", "createContainer"],
          "after create the hooks run were %r" % after_create)
    check(c.cmd("start", cid).rc == 0, "start failed")
    c.wait_status(cid, "stopped")
    r = c.cmd("delete", cid)
    check(r.rc == 0, "delete failed: %s" % r.brief())
    got = b.read("hooklog", rootfs=True).split()
    want = ["prestart", "createRuntime", "createContainer", "startContainer", "program", "poststop"]
    check(got == want, "hook order %r, want %r" % (got, want))


@clause("config.hooks.poststart", "poststart hooks run after the program started (at start, not at create), before poststop")
def _(c):
    b = c.bundle("hookps", sh("echo program >> /hooklog; sleep 1"))
    hook_config(b)
    cid = c.new_id("hookps")
    r = c.create(b, cid)
    check(r.rc == 0, "create failed: %s" % r.brief())
    after_create = b.read("hooklog", rootfs=True).split()
    check("poststart" not in after_create, "poststart ran during create: %r" % after_create)
    check(c.cmd("start", cid).rc == 0, "start failed")
    after_start = b.read("hooklog", rootfs=True).split()
    check("poststart" in after_start, "poststart had not run when start returned: %r" % after_start)
    c.wait_status(cid, "stopped")
    check(c.cmd("delete", cid).rc == 0, "delete failed")
    got = b.read("hooklog", rootfs=True).split()
    check(got[-1:] == ["poststop"] and got.index("poststart") > got.index("startContainer"),
          "hook order %r" % got)
    st = json.loads(b.read("hookstate-poststart.json", rootfs=True) or "{}")
    check(st.get("status") in ("running", "stopped") and st.get("id") == cid,
          "poststart hook stdin: status %r id %r, want running" % (st.get("status"), st.get("id")))


@clause("config.hooks.state-stdin", "hooks get the container state on stdin (id, pid, bundle, annotations, status)")
def _(c):
    b = c.bundle("hookst", sh("sleep 1"))
    b.config["annotations"] = {"org.hull.hook": "yes"}
    hook_config(b)
    cid = c.new_id("hookst")
    check(c.create(b, cid).rc == 0, "create failed")
    pid = c.must_state(cid)["pid"]
    check(c.cmd("start", cid).rc == 0, "start failed")
    c.wait_status(cid, "stopped")
    check(c.cmd("delete", cid).rc == 0, "delete failed")
    want_status = {"prestart": ("creating", "created"), "createRuntime": ("creating", "created"),
                   "createContainer": ("creating", "created"), "startContainer": ("created", "running"),
                   "poststop": ("stopped",)}
    for kind, statuses in want_status.items():
        raw = b.read("hookstate-%s.json" % kind, rootfs=True)
        try:
            st = json.loads(raw)
        except ValueError:
            raise Fail("%s hook: stdin is not JSON state: %r" % (kind, raw[:100]))
        check(st.get("id") == cid, "%s hook: id %r" % (kind, st.get("id")))
        check(st.get("bundle") == b.dir, "%s hook: bundle %r" % (kind, st.get("bundle")))
        check(st.get("annotations") == {"org.hull.hook": "yes"}, "%s hook: annotations %r" % (kind, st.get("annotations")))
        check(st.get("status") in statuses, "%s hook: status %r, want one of %r" % (kind, st.get("status"), statuses))
        if kind in ("createContainer", "startContainer"):
            # run in the container namespace: the pid may be the host's or 1
            check(st.get("pid") in (pid, 1), "%s hook: pid %r, want %r" % (kind, st.get("pid"), pid))
        elif kind != "poststop":
            check(st.get("pid") == pid, "%s hook: pid %r, want %r" % (kind, st.get("pid"), pid))


@clause("config.hooks.args-env", "a hook runs with its args and env")
def _(c):
    b = c.bundle("hookenv", ["true"])
    out = b.rootfs("hookenv")
    b.config["hooks"] = {"prestart": [{"path": "/bin/sh",
                                       "args": ["sh", "-c", 'echo "$0 $1 $HOOKVAR" > %s' % out, "arg0", "arg1"],
                                       "env": ["HOOKVAR=hv", "PATH=/usr/bin:/bin"]}]}
    c.run_ok(b)
    check(b.read("hookenv", rootfs=True).strip() == "arg0 arg1 hv",
          "hook saw %r, want 'arg0 arg1 hv'" % b.read("hookenv", rootfs=True))


@clause("config.hooks.prestart-fail", "a failing prestart hook MUST fail create and the program MUST NOT run")
def _(c):
    b = c.bundle("prefail", sh("echo ran > /marker"))
    b.config["hooks"] = {"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 7"]}]}
    cid = c.new_id("prefail")
    r = c.create(b, cid)
    if r.rc == 0:
        c.cmd("start", cid)
        time.sleep(0.5)
    check(r.rc != 0, "create succeeded despite the failing prestart hook")
    check(not os.path.exists(b.rootfs("marker")), "the program ran")
    st, _ = c.state(cid)
    check(st is None or st.get("status") == "stopped", "container left %r" % (st and st.get("status")))


@clause("config.hooks.poststart-fail", "a failing poststart hook MUST only warn: start succeeds, later hooks run, the program runs")
def _(c):
    b = c.bundle("pstfail", sh("echo ran > /marker; sleep 1"))
    later = b.rootfs("second")
    b.config["hooks"] = {"poststart": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 7"]},
                                       {"path": "/bin/sh", "args": ["sh", "-c", "touch %s" % later]}]}
    cid = c.new_id("pstfail")
    r = c.create(b, cid)
    check(r.rc == 0, "create failed: %s" % r.brief())
    r = c.cmd("start", cid)
    check(r.rc == 0, "start failed: %s" % r.brief())
    c.wait_status(cid, "stopped")
    check(os.path.exists(b.rootfs("marker")), "the program did not run")
    check(os.path.exists(later), "the poststart hook after the failing one did not run")


@clause("config.hooks.poststop-fail", "a failing poststop hook MUST only warn: delete succeeds, later hooks run")
def _(c):
    b = c.bundle("psfail", ["true"])
    later = b.rootfs("second")
    b.config["hooks"] = {"poststop": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 7"]},
                                      {"path": "/bin/sh", "args": ["sh", "-c", "touch %s" % later]}]}
    cid = c.new_id("psfail")
    check(c.create(b, cid).rc == 0, "create failed")
    check(c.cmd("start", cid).rc == 0, "start failed")
    c.wait_status(cid, "stopped")
    r = c.cmd("delete", cid)
    check(r.rc == 0, "delete failed: %s" % r.brief())
    check(os.path.exists(later), "the poststop hook after the failing one did not run")
    st, _ = c.state(cid)
    check(st is None, "container still exists after delete")


# ---- config-linux.md: namespaces -------------------------------------------

NS_FILES = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts", "mount": "mnt", "cgroup": "cgroup"}


def ns_script():
    return "; ".join("echo %s=$(readlink /proc/self/ns/%s)" % (k, f) for k, f in NS_FILES.items()) + "; echo self=$$"


@clause("config-linux.namespaces.new", "each listed namespace type is new (differs from the host); pid 1 is the program")
def _(c):
    b = c.bundle("nsnew", sh(ns_script()))
    b.set_ns(list(NS_FILES))
    kv = c.run_ok(b).kv()
    for k, f in NS_FILES.items():
        check(kv.get(k) and kv[k] != host_ns(f), "%s namespace not new: %r" % (k, kv.get(k)))
    check(kv.get("self") == "1", "the program is pid %r in its pid namespace, want 1" % kv.get("self"))


@clause("config-linux.namespaces.absent", "a namespace type not listed is inherited from the runtime")
def _(c):
    b = c.bundle("nsabs", sh(ns_script()))
    b.set_ns(["pid", "mount"])
    b.config.pop("hostname", None)
    kv = c.run_ok(b).kv()
    for k in ("network", "ipc", "uts", "cgroup"):
        check(kv.get(k) == host_ns(NS_FILES[k]), "%s namespace %r, want the host's %r" % (k, kv.get(k), host_ns(NS_FILES[k])))


@clause("config-linux.namespaces.none", "with no namespaces listed, create works, state has the host pid, every namespace is the runtime's")
def _(c):
    b = c.bundle("nsnone", sh(LOOP))
    b.set_ns([])
    b.config.pop("hostname", None)
    # Only /proc (which the runtime needs, and which then is mounted on the
    # host's view of the rootfs): the other defaults would touch host state.
    b.config["mounts"] = b.config["mounts"][:1]
    b.linux.pop("maskedPaths", None)
    b.linux.pop("readonlyPaths", None)
    b.linux.pop("resources", None)
    cid = c.new_id("nsnone")
    r = c.create(b, cid)
    check(r.rc == 0, "create failed: %s" % r.brief())
    st = c.must_state(cid)
    pid = st.get("pid")
    check(isinstance(pid, int) and pid > 0 and os.path.exists("/proc/%d" % pid),
          "state pid %r is not a live host process (status %r)" % (pid, st.get("status")))
    for k, f in NS_FILES.items():
        got = os.readlink("/proc/%d/ns/%s" % (pid, f))
        check(got == host_ns(f), "%s namespace %r, want the runtime's %r" % (k, got, host_ns(f)))


def holder(c, flags):
    p = subprocess.Popen(["unshare"] + flags + ["sleep", "600"])
    c.cleanups.append(lambda: (p.kill(), p.wait()))
    time.sleep(0.3)
    return p.pid


@clause("config-linux.namespaces.path", "a namespace with a path is joined (net, ipc, uts)")
def _(c):
    pid = holder(c, ["--net", "--ipc", "--uts"])
    b = c.bundle("nspath", sh(ns_script()))
    b.config.pop("hostname", None)
    b.linux["namespaces"] = [{"type": "pid"}, {"type": "mount"},
                             {"type": "network", "path": "/proc/%d/ns/net" % pid},
                             {"type": "ipc", "path": "/proc/%d/ns/ipc" % pid},
                             {"type": "uts", "path": "/proc/%d/ns/uts" % pid}]
    kv = c.run_ok(b).kv()
    for k in ("network", "ipc", "uts"):
        want = os.readlink("/proc/%d/ns/%s" % (pid, NS_FILES[k]))
        check(kv.get(k) == want, "%s namespace %r, want the joined %r" % (k, kv.get(k), want))


@clause("config-linux.namespaces.path-wrong-type", "a namespace path of another type MUST error")
def _(c):
    pid = holder(c, ["--uts"])
    b = c.bundle("nswrong", ["true"])
    b.config.pop("hostname", None)
    b.linux["namespaces"] = [{"type": "pid"}, {"type": "mount"},
                             {"type": "network", "path": "/proc/%d/ns/uts" % pid}]
    cid = c.new_id("nswrong")
    r = c.create(b, cid)
    check(r.rc != 0, "create with a uts namespace path for 'network' succeeded")


@clause("config-linux.namespaces.duplicate", "a namespace type listed twice MUST error")
def _(c):
    b = c.bundle("nsdup", ["true"])
    b.linux["namespaces"].append({"type": "pid"})
    cid = c.new_id("nsdup")
    r = c.create(b, cid)
    check(r.rc != 0, "create with 'pid' listed twice succeeded")


@clause("config-linux.namespaces.user-mappings", "user namespace with uidMappings/gidMappings")
def _(c):
    b = c.bundle("userns", sh("echo uid=$(id -u); cat /proc/self/uid_map /proc/self/gid_map; sleep 1"))
    b.set_ns(["pid", "network", "ipc", "uts", "mount", "user"])
    b.linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    b.linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    b.config["mounts"] = [m for m in b.config["mounts"] if m["destination"] not in ("/sys", "/dev/mqueue")]
    b.linux.pop("resources", None)
    os.chmod(b.dir, 0o755)
    r = c.run_ok(b)
    maps = [l.split() for l in r.out.splitlines() if l.strip() and l.split()[0].isdigit()]
    check(r.kv().get("uid") == "0", "uid in the container %r, want 0" % r.kv().get("uid"))
    check(maps == [["0", "100000", "65536"], ["0", "100000", "65536"]], "uid_map/gid_map %r" % maps)


@clause("config-linux.timeOffsets", "a new time namespace with timeOffsets moves boottime (/proc/uptime)")
def _(c):
    off = 10 * 365 * 86400
    b = c.bundle("timens", sh("cut -d. -f1 /proc/uptime"))
    b.linux["namespaces"].append({"type": "time"})
    b.linux["timeOffsets"] = {"boottime": {"secs": off, "nanosecs": 0}}
    with open("/proc/uptime") as f:
        before = int(float(f.read().split()[0]))
    r = c.run_ok(b)
    inside = int(r.out.strip() or 0)
    check(inside >= before + off, "uptime inside %d, want at least %d" % (inside, before + off))


# ---- config-linux.md: devices ----------------------------------------------

@clause("config-linux.devices", "linux.devices are created with type, major/minor, fileMode, uid, gid")
def _(c):
    b = c.bundle("dev", ["stat", "-c", "%F|%t|%T|%a|%u|%g", "/dev/hullconf0", "/dev/sub/hullconf1"])
    b.linux["devices"] = [
        {"path": "/dev/hullconf0", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 11, "gid": 12},
        {"path": "/dev/sub/hullconf1", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600, "uid": 0, "gid": 0},
    ]
    r = c.run_ok(b)
    lines = r.out.splitlines()
    check(lines[:1] == ["character special file|1|3|640|11|12"], "/dev/hullconf0: %r" % lines[:1])
    check(lines[1:2] == ["block special file|7|c8|600|0|0"], "/dev/sub/hullconf1: %r" % lines[1:2])


@clause("config-linux.devices.default", "default devices exist (null zero full random urandom tty ptmx) and work")
def _(c):
    names = ["null", "zero", "full", "random", "urandom", "tty"]
    b = c.bundle("defdev", sh("for d in %s; do echo $d=$(stat -c '%%F|%%t|%%T' /dev/$d); done; "
                              "echo ptmx=$(stat -L -c '%%t|%%T' /dev/ptmx); "
                              "echo x > /dev/null && echo nullw=ok; echo z=$(head -c 4 /dev/zero | od -An -tx1 | tr -d ' ')"
                              % " ".join(names)))
    kv = c.run_ok(b).kv()
    want = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9), "tty": (5, 0)}
    for n, (ma, mi) in want.items():
        check(kv.get(n) == "character special file|%x|%x" % (ma, mi), "/dev/%s: %r" % (n, kv.get(n)))
    check(kv.get("ptmx") == "5|2", "/dev/ptmx: %r" % kv.get("ptmx"))
    check(kv.get("nullw") == "ok" and kv.get("z") == "00000000", "default devices not usable: %r" % kv)


@clause("config-linux.devices.symlinks", "/dev/fd, /dev/stdin, /dev/stdout, /dev/stderr symlinks")
def _(c):
    b = c.bundle("devlnk", sh("for l in fd stdin stdout stderr ptmx; do echo $l=$(readlink /dev/$l); done"))
    kv = c.run_ok(b).kv()
    want = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"}
    for k, v in want.items():
        check(kv.get(k) == v, "/dev/%s -> %r, want %r" % (k, kv.get(k), v))


# ---- config-linux.md: sysctl, masked and read-only paths, propagation -------

@clause("config-linux.sysctl", "linux.sysctl values are set (net.*, kernel.* in new namespaces)")
def _(c):
    b = c.bundle("sysctl", sh("echo f=$(cat /proc/sys/net/ipv4/ip_forward); echo s=$(cat /proc/sys/kernel/shm_rmid_forced)"))
    b.linux["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1"}
    kv = c.run_ok(b).kv()
    check(kv.get("f") == "1", "net.ipv4.ip_forward=%r" % kv.get("f"))
    check(kv.get("s") == "1", "kernel.shm_rmid_forced=%r" % kv.get("s"))


@clause("config-linux.maskedPaths", "maskedPaths: files read empty, directories are empty")
def _(c):
    b = c.bundle("masked", sh("echo f=$(cat /secret_file); echo d=$(ls /secret_dir); echo k=$(cat /proc/kcore | wc -c)"))
    os.makedirs(b.rootfs("secret_dir"))
    open(b.rootfs("secret_dir", "inner"), "w").close()
    with open(b.rootfs("secret_file"), "w") as f:
        f.write("secret\n")
    b.linux["maskedPaths"] += ["/secret_file", "/secret_dir", "/no/such/path"]
    kv = c.run_ok(b).kv()
    check(kv.get("f") == "", "masked file reads %r" % kv.get("f"))
    check(kv.get("d") == "", "masked dir lists %r" % kv.get("d"))
    check(kv.get("k") == "0", "/proc/kcore has %r bytes" % kv.get("k"))


@clause("config-linux.readonlyPaths", "readonlyPaths are read-only and still readable")
def _(c):
    b = c.bundle("ropath", sh("echo r=$(cat /rodir/f); touch /rodir/g 2>/dev/null && echo w=yes || echo w=no; "
                              "echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo p=yes || echo p=no"))
    os.makedirs(b.rootfs("rodir"))
    with open(b.rootfs("rodir", "f"), "w") as f:
        f.write("data\n")
    b.linux["readonlyPaths"] += ["/rodir"]
    kv = c.run_ok(b).kv()
    check(kv.get("r") == "data", "read-only path not readable: %r" % kv.get("r"))
    check(kv.get("w") == "no", "write to a read-only path succeeded")
    check(kv.get("p") == "no", "write to /proc/sys succeeded")


def root_mount_line(out):
    for l in out.splitlines():
        f = l.split()
        if len(f) > 5 and f[4] == "/":
            return l
    return ""


PROP_SCRIPT = ("mkdir -p /target /mnt1 /testd; touch /testd/example; "
               "if mount --rbind / /target 2>/dev/null; then echo bind=ok; else echo bind=fail; exit 0; fi; "
               "mount --bind /testd /mnt1 || echo mount=fail; "
               "[ -e /target/mnt1/example ] && echo exposed=yes || echo exposed=no")


def propagation(c, prop):
    b = c.bundle("prop", sh(PROP_SCRIPT))
    b.linux["rootfsPropagation"] = prop
    for k in ("bounding", "effective", "permitted"):
        b.process["capabilities"][k] = b.process["capabilities"][k] + ["CAP_SYS_ADMIN"]
    return c.run_ok(b).kv()


def propagation_clause(prop, want):
    text = {"yes": "a new mount under / propagates to a recursive bind of /",
            "no": "a new mount under / does not propagate to a recursive bind of /",
            None: "a bind mount of / is refused (EINVAL)"}[want]

    @clause("config-linux.rootfsPropagation.%s" % prop, "rootfsPropagation %s: %s" % (prop, text))
    def _(c):
        kv = propagation(c, prop)
        if want is None:
            check(kv.get("bind") == "fail", "a bind of / succeeded")
        else:
            check(kv.get("bind") == "ok", "bind of / failed")
            check(kv.get("exposed") == want, "exposed=%r, want %r" % (kv.get("exposed"), want))


for _prop, _want in (("private", "no"), ("slave", "no"), ("shared", "yes"), ("unbindable", None)):
    propagation_clause(_prop, _want)


# ---- config-linux.md: cgroups -----------------------------------------------

def cgroup_lines(pid):
    with open("/proc/%d/cgroup" % pid) as f:
        return [l.strip().split(":", 2) for l in f if l.strip()]


@clause("config-linux.cgroupsPath", "the container is placed in linux.cgroupsPath; delete removes it")
def _(c):
    b = c.bundle("cgpath", sh(LOOP))
    cid = c.new_id("cgpath")
    path = "/hullconf-%s" % cid
    b.linux["cgroupsPath"] = path
    check(c.create(b, cid).rc == 0, "create failed")
    pid = c.must_state(cid)["pid"]
    lines = cgroup_lines(pid)
    placed = {l[1] or "unified": l[2] for l in lines}
    bad = {k: v for k, v in placed.items() if v != path and k in ("pids", "memory", "cpu,cpuacct", "devices", "unified")}
    check(not bad, "process %d not in %s: %r" % (pid, path, bad))
    dirs = [d for d in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory", "/sys/fs/cgroup") if os.path.isdir(d + path)]
    check(dirs, "no cgroup directory %s created" % path)
    check(c.cmd("kill", cid, "KILL").rc == 0, "kill failed")
    c.wait_status(cid, "stopped")
    check(c.cmd("delete", cid).rc == 0, "delete failed")
    left = [d + path for d in dirs if os.path.isdir(d + path)]
    check(not left, "delete left cgroup directories %r" % left)


@clause("config-linux.namespaces.cgroup", "a new cgroup namespace shows the container's cgroup as /")
def _(c):
    b = c.bundle("cgns", ["cat", "/proc/self/cgroup"])
    b.set_ns(["pid", "network", "ipc", "uts", "mount", "cgroup"])
    r = c.run_ok(b)
    bad = [l for l in r.out.splitlines() if l and not l.endswith(":/")]
    check(not bad, "cgroup paths not rooted at the namespace: %r" % bad)


# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------

def run_suite(name, binary, work, template, selected, stream):
    ctx = Ctx(name, binary, work, template)
    results = []
    try:
        for cid, text, fn in selected:
            try:
                fn(ctx)
                status, reason = "PASS", ""
            except Fail as e:
                status, reason = "FAIL", str(e)
            except Skip as e:
                status, reason = "SKIP", str(e)
            except Exception as e:  # a bug in the suite or an unexpected runtime reply
                status, reason = "FAIL", "%s: %s" % (type(e).__name__, e)
                if os.environ.get("HULLCONF_DEBUG"):
                    traceback.print_exc()
            finally:
                ctx.cleanup()
            results.append((cid, text, status, reason))
            if stream:
                line = "%s %s %s" % (status, cid, text)
                if reason:
                    line += " -- " + reason.replace("\n", " ")
                print(line, flush=True)
    finally:
        ctx.destroy()
    return results


def summary(results):
    n = sum(1 for r in results if r[2] == "PASS")
    m = sum(1 for r in results if r[2] == "FAIL")
    k = sum(1 for r in results if r[2] == "SKIP")
    return "%d passed, %d failed, %d skipped" % (n, m, k)


def main():
    ap = argparse.ArgumentParser(description="OCI runtime-spec 1.2 conformance suite (hull's own)")
    ap.add_argument("--compare", action="store_true",
                    help="run against $RUNTIME (default hull) and runc (or $COMPARE_RUNTIME), side by side")
    ap.add_argument("-k", dest="filter", default="", help="only clauses whose id contains this")
    ap.add_argument("--list", action="store_true", help="list the clauses and exit")
    a = ap.parse_args()

    selected = [cl for cl in CLAUSES if a.filter in cl[0]]
    if a.list:
        for cid, text, _ in selected:
            print("%s %s" % (cid, text))
        return 0
    if os.geteuid() != 0:
        print("SKIP all -- the conformance suite needs root")
        print("0 passed, 0 failed, %d skipped" % len(selected))
        return 0
    if not os.path.isfile(BUSYBOX):
        print("SKIP all -- %s is missing (install busybox-static)" % BUSYBOX)
        print("0 passed, 0 failed, %d skipped" % len(selected))
        return 0

    rt_name = os.environ.get("RUNTIME", "hull") or "hull"
    work = tempfile.mkdtemp(prefix="hullconf-")
    os.chmod(work, 0o755)
    template = os.path.join(work, "rootfs-template")
    make_rootfs_template(template)
    try:
        main_bin = resolve_runtime(rt_name)
        if not a.compare:
            print("# runtime: %s (%s)" % (rt_name, main_bin), flush=True)
            res = run_suite(rt_name, main_bin, work, template, selected, True)
            print(summary(res))
            return 1 if any(r[2] == "FAIL" for r in res) else 0

        other_name = os.environ.get("COMPARE_RUNTIME", "runc")
        other_bin = resolve_runtime(other_name)
        print("# %s: %s" % (rt_name, main_bin))
        print("# %s: %s" % (other_name, other_bin), flush=True)
        res_a = run_suite(rt_name, main_bin, work, template, selected, False)
        res_b = run_suite(other_name, other_bin, work, template, selected, False)
        w = max(len(r[0]) for r in res_a)
        print("%-4s %-4s %-*s %s" % (rt_name[:4], other_name[:4], w, "clause", "text"))
        for ra, rb in zip(res_a, res_b):
            print("%-4s %-4s %-*s %s" % (ra[2], rb[2], w, ra[0], ra[1]))
            for nm, r in ((rt_name, ra), (other_name, rb)):
                if r[3]:
                    print("       %s: %s" % (nm, r[3].replace("\n", " ")))
        only = [ra[0] for ra, rb in zip(res_a, res_b) if ra[2] == "FAIL" and rb[2] == "PASS"]
        both = [ra[0] for ra, rb in zip(res_a, res_b) if ra[2] == "FAIL" and rb[2] == "FAIL"]
        print("# %s fails where %s passes: %s" % (rt_name, other_name, " ".join(only) or "none"))
        print("# both fail (machine limit or both wrong): %s" % (" ".join(both) or "none"))
        print("%s: %s" % (other_name, summary(res_b)))
        print(summary(res_a))
        return 1 if only else 0
    finally:
        unmount_under(work)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
