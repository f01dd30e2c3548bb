"""Confinement of one process: what a student process may read, write, reach and use.

- Landlock (Linux >= 5.13): read-only access to the Python installation (split around the
  folders to hide), read-write access to the job's temporary folder, nothing else; TCP
  denied (ABI >= 4), signals and abstract unix sockets scoped to the sandbox (ABI >= 6);
- seccomp: socket(), socketpair() and io_uring_setup() fail with EPERM, and so does every
  kernel object that two processes could share without a file they may write: System V IPC
  (shared memory, semaphores, message queues), POSIX message queues, file locks (flock and
  the lock commands of fcntl, open file description locks included), leases and directory
  notifications, inotify and fanotify, the kernel keyrings, and setting what another
  process may read by pid (nice value, scheduling policy, I/O priority), and reading what
  the page cache holds (mincore, cachestat, preadv2's RWF_NOWAIT);
- a PID namespace, a network namespace and an IPC namespace of its own (root only);
- dropping root to a uid of the job slot, keeping filesystem uid 0 only under Landlock,
  without capabilities;
- resource limits: memory, processes, file size, CPU time, open files, no core dumps.

Every function here applies to the calling process (or probes in a throwaway child); the
order in which they are applied is ``server.student_process``'s.
"""

from __future__ import annotations

import ctypes
import os
import platform
import resource
import socket
import sys

LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
_SYSCALLS = {  # landlock_create_ruleset, landlock_add_rule, landlock_restrict_self, capset
    "x86_64": (444, 445, 446, 126),
    "aarch64": (444, 445, 446, 91),
}
PR_SET_NO_NEW_PRIVS = 38
PR_SET_KEEPCAPS = 8
CAP_SETUID = 7

# Landlock filesystem rights, by the ABI version that introduced them.
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1, 2, 4, 8
FS_ABI1 = (1 << 13) - 1
FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
FS_READ = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
NET_TCP = 0b11          # bind + connect (ABI 4)
SCOPE_ALL = 0b11        # abstract unix sockets + signals (ABI 6)

READ_ONLY_SYSTEM = ["/usr/lib", "/usr/lib64", "/usr/local/lib", "/lib", "/lib64",
                    "/usr/share/zoneinfo", "/etc/ld.so.cache", "/etc/localtime",
                    # the CPU description: without it PyTorch's cpuinfo fails and its kernels
                    # (random numbers included) differ from those the judge uses
                    "/proc/cpuinfo", "/sys/devices/system/cpu"]
DEVICES = ["/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"]

CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWPID = 0x40000000, 0x08000000, 0x20000000
# seccomp: refuse to create sockets (every family) and io_uring instances, whose operations
# could open sockets behind the filter's back; the pipes the grader made stay usable. Refuse
# too what two student processes could share through the kernel without a file they may
# write (issue 18): each is a channel between students graded at the same time, and SysV IPC
# objects outlive their creator (a channel to every later student, and memory nobody frees).
SECCOMP_MODE_FILTER, PR_SET_SECCOMP = 2, 22
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_SOCKETS = {"x86_64": (41, 53, 425), "aarch64": (198, 199, 425)}  # socket, socketpair, io_uring_setup
_SHARED = {  # syscalls refused by name, by what they would share
    "x86_64": {
        "sysv": (29, 30, 31, 67, 64, 65, 66, 220, 68, 69, 70, 71),  # shm*, sem*, msg*
        "mqueue": (240, 241, 242, 243, 244, 245),                  # mq_open ... mq_getsetattr
        "flock": (73,),
        "inotify": (253, 254, 255, 294, 300, 301),                 # inotify_*, fanotify_*
        "keyring": (248, 249, 250),                                # add_key, request_key, keyctl
        # what any process may read of another by pid: nice value, scheduling, I/O priority
        # (setpriority, sched_setparam, sched_setscheduler, sched_setattr, ioprio_set)
        "priority": (141, 142, 144, 314, 251),
        # what is in the page cache (shared by everyone, kept after a student ends):
        # mincore, cachestat, and preadv2/pwritev2 (RWF_NOWAIT says whether a read would block)
        "page cache": (27, 451, 327, 328),
    },
    "aarch64": {
        "sysv": (186, 187, 188, 189, 190, 191, 192, 193, 194, 195, 196, 197),
        "mqueue": (180, 181, 182, 183, 184, 185),
        "flock": (32,),
        "inotify": (26, 27, 28, 262, 263),
        "keyring": (217, 218, 219),
        "priority": (140, 118, 119, 274, 30),
        "page cache": (232, 451, 286, 287),
    },
}
_FCNTL = {"x86_64": 72, "aarch64": 25}
# fcntl commands refused: F_GETLK, F_SETLK, F_SETLKW (the same numbers as their 64-bit forms
# on these ABIs), F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW, F_SETLEASE, F_GETLEASE, F_NOTIFY
FCNTL_DENIED = (5, 6, 7, 36, 37, 38, 1024, 1025, 1026)


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0 when unavailable)."""
    numbers = _SYSCALLS.get(platform.machine())
    if not numbers or not sys.platform.startswith("linux"):
        return 0
    version = _libc().syscall(numbers[0], None, ctypes.c_size_t(0),
                              ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    return max(int(version), 0)


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def python_roots() -> list[str]:
    """Folders of the Python installation and its packages (read-only in the sandbox)."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    for path in sys.path:
        if path and ("site-packages" in path or "dist-packages" in path) and os.path.isdir(path):
            roots.add(path)
    return sorted(roots)


def allowed_paths(private: list[str]) -> list[str]:
    """Read-only roots, split around ``private`` folders that lie inside one of them.

    Landlock cannot deny a folder below an allowed one, so when, say, ``autograder/`` is
    installed inside site-packages, site-packages is allowed entry by entry instead.
    """
    private = [os.path.realpath(h) for h in private if h]
    roots = [os.path.realpath(r) for r in python_roots() + READ_ONLY_SYSTEM if os.path.exists(r)]
    allowed: list[str] = []

    def add(path: str) -> None:
        inner = [h for h in private if h == path or h.startswith(path.rstrip("/") + "/")]
        if not inner:
            allowed.append(path)
        elif path not in inner and os.path.isdir(path):
            for entry in os.listdir(path):
                add(os.path.join(path, entry))

    for root in roots:
        if any(root.startswith(h.rstrip("/") + "/") or root == h for h in private):
            continue  # an installation inside a private folder (a venv in the repository)
        add(root)
    return sorted(set(allowed))


def enter_landlock(read_only: list[str], read_write: list[str], devices: list[str]) -> int:
    """Restrict this process (and its future children); returns the ABI used (0: none)."""
    abi = landlock_abi()
    if abi < 1:
        return 0
    create, add_rule, restrict, _ = _SYSCALLS[platform.machine()]
    libc = _libc()
    fs = FS_ABI1 | (FS_REFER if abi >= 2 else 0) | (FS_TRUNCATE if abi >= 3 else 0) \
        | (FS_IOCTL_DEV if abi >= 5 else 0)
    attr = _RulesetAttr(fs, NET_TCP if abi >= 4 else 0, SCOPE_ALL if abi >= 6 else 0)
    size = 8 if abi < 4 else (16 if abi < 6 else 24)
    ruleset = libc.syscall(create, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    rw = fs
    try:
        for paths, access in ((read_only, FS_READ), (read_write, rw),
                              (devices, FS_READ_FILE | FS_WRITE_FILE
                               | (FS_TRUNCATE if abi >= 3 else 0))):
            for path in paths:
                try:
                    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue
                try:
                    mask = access if os.path.isdir(path) else access & (
                        FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV)
                    rule = _PathBeneath(mask & fs, fd)
                    if libc.syscall(add_rule, ctypes.c_int(ruleset),
                                    ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH),
                                    ctypes.byref(rule), ctypes.c_uint32(0)) < 0:
                        raise OSError(ctypes.get_errno(), f"landlock_add_rule {path} failed")
                finally:
                    os.close(fd)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(NO_NEW_PRIVS) failed")
        if libc.syscall(restrict, ctypes.c_int(ruleset), ctypes.c_uint32(0)) < 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)
    return abi


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def deny_sockets() -> bool:
    """Install the seccomp filter (x86_64 and aarch64): socket(), socketpair(),
    io_uring_setup() fail with EPERM, and so does every syscall of ``_SHARED`` and the lock,
    lease and notification commands of fcntl (``FCNTL_DENIED``); False where it cannot be
    installed."""
    machine = platform.machine()
    if machine not in _AUDIT_ARCH or not sys.platform.startswith("linux"):
        return False
    ld_w_abs, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    errno = SECCOMP_RET_ERRNO | 1  # EPERM
    program = [_SockFilter(ld_w_abs, 0, 0, 4),                        # the audit arch
               _SockFilter(jeq, 1, 0, _AUDIT_ARCH[machine]),
               _SockFilter(ret, 0, 0, errno),                          # another ABI: refuse
               _SockFilter(ld_w_abs, 0, 0, 0)]                        # the syscall number
    if machine == "x86_64":  # the x32 ABI's numbers have bit 30 set
        program += [_SockFilter(jge, 0, 1, 0x40000000), _SockFilter(ret, 0, 0, errno)]
    denied = list(_SOCKETS[machine]) + [n for group in _SHARED[machine].values() for n in group]
    for number in denied:
        program += [_SockFilter(jeq, 0, 1, number), _SockFilter(ret, 0, 0, errno)]
    program += [_SockFilter(jeq, 1, 0, _FCNTL[machine]),               # fcntl: look at cmd
                _SockFilter(ret, 0, 0, SECCOMP_RET_ALLOW),
                _SockFilter(ld_w_abs, 0, 0, 24)]                       # args[1], low 32 bits
    for command in FCNTL_DENIED:
        program += [_SockFilter(jeq, 0, 1, command), _SockFilter(ret, 0, 0, errno)]
    program.append(_SockFilter(ret, 0, 0, SECCOMP_RET_ALLOW))
    filters = (_SockFilter * len(program))(*program)
    fprog = _SockFprog(len(program), ctypes.cast(filters, ctypes.POINTER(_SockFilter)))
    libc = _libc()
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    return libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) == 0


def new_network_namespace() -> bool:
    """Enter a network namespace of its own (no interfaces up, no abstract unix sockets
    shared with anyone); needs CAP_SYS_ADMIN. False where it is refused."""
    if not sys.platform.startswith("linux"):
        return False
    return _libc().unshare(CLONE_NEWNET) == 0


def new_pid_namespace() -> bool:
    """Make the next child of this process the first of a PID namespace of its own: it names
    no process outside (no nice value, scheduling policy or existence of another student's
    processes to read) and its pids do not follow the host's counter; needs CAP_SYS_ADMIN.
    False where it is refused."""
    if not sys.platform.startswith("linux"):
        return False
    return _libc().unshare(CLONE_NEWPID) == 0


def new_ipc_namespace() -> bool:
    """Enter an IPC namespace of its own: System V objects and POSIX message queues that
    nobody else sees, destroyed with the namespace when the process is gone; needs
    CAP_SYS_ADMIN. False where it is refused."""
    if not sys.platform.startswith("linux"):
        return False
    return _libc().unshare(CLONE_NEWIPC) == 0


def network_isolation() -> str:
    """What a student process would get here: "namespace+seccomp", "seccomp", "namespace" or
    "none" (probed in a throwaway child)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        parts = []
        if os.geteuid() == 0 and new_network_namespace():
            parts.append("namespace")
        if deny_sockets():
            try:
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()
            except OSError:
                parts.append("seccomp")
        os.write(write, ("+".join(parts) or "none").encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as stream:
        found = stream.read().decode() or "none"
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:  # already reaped (SIGCHLD ignored)
        pass
    return found


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _capset(effective: int, permitted: int) -> None:
    libc = _libc()
    header = _CapHeader(0x20080522, 0)
    data = (_CapData * 2)(_CapData(effective, permitted, 0), _CapData(0, 0, 0))
    if libc.syscall(_SYSCALLS[platform.machine()][3], ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def drop_root(uid: int, keep_fs_root: bool = True) -> str:
    """Run as ``uid`` (so RLIMIT_NPROC applies) without capabilities; with filesystem uid 0
    only when ``keep_fs_root`` (under Landlock, which then decides what may be read and
    written: files of a Python installation under ``/root`` stay readable). Without Landlock
    the filesystem uid is ``uid`` too: no file privilege beyond what any user has."""
    libc = _libc()
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0)
    os.setresuid(uid, uid, uid)
    fs_root = False
    if keep_fs_root:
        try:
            _capset(1 << CAP_SETUID, 1 << CAP_SETUID)
            libc.setfsuid(0)
            fs_root = True
        except (OSError, KeyError):
            pass
    _capset(0, 0)
    libc.prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0)
    return f"uid {uid}" + (" (filesystem uid 0, no capabilities)" if fs_root else "")


def set_limits(vm: int, memory_mb: int, timeout: float, nproc: int) -> None:
    """Resource limits: ``memory_mb`` above the current size ``vm``, processes, file size,
    CPU time, open files, no core dumps (each capped by its hard limit)."""
    def limit(kind: int, value: int) -> None:
        try:
            soft, hard = resource.getrlimit(kind)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(kind, (value, value))
        except (ValueError, OSError):
            pass

    limit(resource.RLIMIT_AS, vm + int(memory_mb) * 1024 * 1024)
    limit(resource.RLIMIT_CORE, 0)
    limit(resource.RLIMIT_FSIZE, 64 * 1024 * 1024)
    limit(resource.RLIMIT_CPU, int(float(timeout)) + 5)
    limit(resource.RLIMIT_NOFILE, 256)
    limit(resource.RLIMIT_NPROC, int(nproc))

