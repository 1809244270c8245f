"""The sandbox of Chapter 5 against hostile programs: each is contained, fails with its
reason, and leaves the host and the harness running. The tests that need kernel walls
(namespaces, a throwaway uid) skip where the machine cannot build them, except with `CI`
set, where they must run."""

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from llmbook.evaluate import Limits, Walls, available_walls, run_sandboxed

FAST = Limits(wall_s=2, cpu_s=5)
WALLS = available_walls()
TEMP_DIRS = ("/tmp", "/var/tmp", "/dev/shm")


def need(*names):
    "Skip unless the machine gives these walls; with CI set, a missing wall is a failure."
    missing = [n for n in names if not getattr(WALLS, n)]
    if missing:
        why = f"the sandbox cannot build {missing} here ({WALLS.describe()})"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the namespace tests: {why}")
        pytest.skip(why)


def test_a_correct_program_passes():
    r = run_sandboxed("assert sum(range(10)) == 45\nprint('hello')")
    assert r.passed and r.reason == "passed" and "hello" in r.stdout


def test_a_failing_assert_fails_with_its_reason():
    r = run_sandboxed("assert 1 + 1 == 3, 'arithmetic'")
    assert not r.passed and "AssertionError: arithmetic" in r.reason


@pytest.mark.parametrize(
    "name, program, reason",
    [
        ("infinite loop", "while True: pass", "timeout"),
        ("sleep", "import time\ntime.sleep(600)", "timeout"),
        (
            "memory bomb",
            "x = []\nwhile True: x.append(bytearray(50 << 20))",
            "memory limit",
        ),
        ("huge allocation", "x = bytearray(8 << 30)", "memory limit"),
        (
            "fork bomb",
            "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass",
            "timeout",
        ),
        (
            "fork bomb that gives up",
            "import os\nwhile True: os.fork()",
            "process limit",
        ),
        ("sys.exit(0)", "import sys\nsys.exit(0)", "exited before the tests finished"),
        ("os._exit(0)", "import os\nos._exit(0)", "exited before the tests finished"),
        ("sys.exit(3)", "import sys\nsys.exit(3)", "exited with status 3"),
        ("huge output", "while True: print('x' * 100_000)", "file size limit"),
        ("huge file", "open('big', 'w').write('x' * (8 << 20))", "file size limit"),
    ],
)
def test_hostile_program_is_contained(name, program, reason):
    # Programs that must meet another wall get time to reach it on a busy machine.
    limits = FAST if reason == "timeout" else Limits(wall_s=10, cpu_s=5)
    r = run_sandboxed(program, limits)
    assert not r.passed and reason in r.reason, (name, r)
    assert r.seconds < limits.wall_s + 5


def test_cpu_limit():
    r = run_sandboxed("while True: pass", Limits(wall_s=20, cpu_s=1))
    assert not r.passed and "CPU limit" in r.reason, r


def test_no_processes_left_behind():
    r = run_sandboxed(
        "import os, time\nfor _ in range(5):\n    if os.fork() == 0:\n        os.setsid(); time.sleep(600)\n"
        "time.sleep(600)",
        FAST,
    )
    assert "timeout" in r.reason
    if r.isolation.startswith("uid"):
        uid = int(r.isolation.split(",")[0].split()[1])
        ps = subprocess.run(
            ["ps", "-eo", "uid=,stat="], capture_output=True, text=True
        ).stdout.split("\n")
        alive = [
            line
            for line in ps
            if line.split()
            and int(line.split()[0]) == uid
            and not line.split()[1].startswith("Z")
        ]
        assert not alive, alive


def host_dir() -> Path:
    "A fresh root-owned directory outside the temporary directories, visible to the sandbox."
    for parent in ("/var/lib", "/opt", "/usr/local/lib", "/srv"):
        try:
            home = Path(tempfile.mkdtemp(prefix="llmbook-host-", dir=parent))
        except OSError:  # missing, or not ours to write
            continue
        home.chmod(0o755)
        return home
    pytest.skip("no root-owned directory outside /tmp to put host files in")


@pytest.mark.parametrize("where", ["visible", "in the host's /tmp"])
def test_files_outside_are_safe(where, tmp_path):
    home = host_dir() if where == "visible" else tmp_path
    precious = home / "precious.txt"
    precious.write_text("keep me")
    # Visible files are read-only to the sandbox and not its uid's; the host's /tmp is
    # not even in sight; without the mount wall, the throwaway uid or the guard refuses.
    why = ["PermissionError"]
    if WALLS.mounts:
        why = (
            why + ["Read-only file system"] if where == "visible" else ["No such file"]
        )
    try:
        for program in (
            f"import os\nos.remove({str(precious)!r})",
            f"import shutil\nshutil.rmtree({str(home)!r})",
            f"open({str(home / 'evil.txt')!r}, 'w').write('owned')",
            f"open({str(precious)!r}, 'a').write('appended')",
        ):
            r = run_sandboxed(program, FAST)
            assert not r.passed and any(w in r.reason for w in why), (program, r)
        assert precious.read_text() == "keep me"
        assert not (home / "evil.txt").exists()
    finally:
        if where == "visible":
            shutil.rmtree(home)


def test_files_inside_are_fine():
    assert run_sandboxed(
        "open('scratch.txt', 'w').write('ok')\nassert open('scratch.txt').read() == 'ok'"
    ).passed


def test_environment_is_scrubbed(monkeypatch):
    monkeypatch.setenv("LLMBOOK_TEST_SECRET", "hunter2")
    r = run_sandboxed(
        "import os\nassert 'LLMBOOK_TEST_SECRET' not in os.environ\nprint(sorted(os.environ))"
    )
    assert r.passed, r


def test_network_connection_fails():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    connect = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).close()"
    try:
        assert (
            subprocess.run([sys.executable, "-c", connect]).returncode == 0
        )  # reachable from outside
        r = run_sandboxed(connect, FAST)
    finally:
        server.close()
    assert not r.passed and ("unreachable" in r.reason or "disabled" in r.reason), r


def test_killing_the_parent_fails_and_the_harness_survives():
    # The harness runs in an intermediate process: if the sandbox failed, only that process would die.
    harness = textwrap.dedent("""
        import os, signal
        from llmbook.evaluate import run_sandboxed, Limits
        for prog in ("import os, signal\\nos.kill(os.getppid(), signal.SIGKILL)",
                     "import os, signal\\nos.kill(1, signal.SIGTERM)",
                     "import os, signal\\nos.killpg(os.getpgid(os.getppid()), signal.SIGKILL)"):
            r = run_sandboxed(prog, Limits(wall_s=2))
            assert not r.passed, r
        print("harness alive")
    """)
    out = subprocess.run(
        [sys.executable, "-c", harness], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and "harness alive" in out.stdout, out.stderr


def test_harness_keeps_working_after_the_battery():
    for program in (
        "while True: pass",
        "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass",
    ):
        run_sandboxed(program, Limits(wall_s=1))
    assert run_sandboxed("assert 2 ** 10 == 1024").passed


def litter_program(paths):
    return f"for p in {paths!r}:\n    open(p, 'w').write('x')\nprint('wrote', len({paths!r}))"


def test_temporary_files_do_not_survive():
    need("mounts", "uid")
    paths = [f"{d}/llmbook-litter-{secrets.token_hex(4)}" for d in TEMP_DIRS]
    r = run_sandboxed(litter_program(paths), FAST)
    assert r.passed and "wrote 3" in r.stdout, r  # the writes succeeded, inside
    assert not [p for p in paths if os.path.exists(p)]


def test_without_the_mount_wall_temporary_files_would_survive():
    # The control for the test above: the same program behind every wall but the
    # mounts leaves its files on the host, so that test can fail.
    need("mounts", "uid")
    paths = [f"{d}/llmbook-litter-{secrets.token_hex(4)}" for d in TEMP_DIRS]
    try:
        r = run_sandboxed(litter_program(paths), FAST, Walls(True, WALLS.netns))
        assert r.passed, r
        assert all(os.path.exists(p) for p in paths)
    finally:
        for p in paths:
            if os.path.exists(p):
                os.remove(p)


def test_total_disk_is_bounded():
    need("mounts")
    fill = "for i in range(100):\n    open(f'f{i}', 'wb').write(bytes(1000 << 10))"
    for where in ("", "/tmp/", "/dev/shm/"):
        r = run_sandboxed(fill.replace("f'f{i}'", f"f'{where}f{{i}}'"), FAST)
        assert not r.passed and "disk limit" in r.reason, (where, r)
    limits = Limits(wall_s=5, disk_bytes=200 << 20)  # a larger tmpfs holds them all
    assert run_sandboxed(fill, limits).passed


def test_the_rest_of_the_file_system_is_read_only():
    need("mounts", "uid")
    r = run_sandboxed("open('/run/lock/llmbook-evil', 'w')", FAST)
    assert not r.passed and "Read-only file system" in r.reason, r


def setuid_copy_of_id() -> Path | None:
    "A setuid-root copy of `id` that any user may run, on a mount that honours setuid."
    home = host_dir()
    if os.statvfs(home).f_flag & os.ST_NOSUID:
        shutil.rmtree(home)
        return None
    binary = home / "id"
    shutil.copy("/usr/bin/id", binary)
    binary.chmod(0o4755)
    return binary


def test_a_setuid_program_gains_nothing():
    need("uid", "no_new_privs")
    binary = setuid_copy_of_id()
    if binary is None:
        why = "no directory outside /tmp here honours setuid"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the setuid test: {why}")
        pytest.skip(why)
    try:
        # The control: run as an ordinary user without the wall, it does become root.
        plain = subprocess.run(
            [binary], user=45678, group=45678, capture_output=True, text=True
        )
        assert "euid=0" in plain.stdout, plain
        program = (
            "import subprocess\n"
            f"out = subprocess.run([{str(binary)!r}], capture_output=True, text=True)\n"
            "print(out.stdout)\n"
            "assert 'euid=0' not in out.stdout, out.stdout\n"
            "assert 'NoNewPrivs:\\t1' in open('/proc/self/status').read()"
        )
        r = run_sandboxed(program, FAST)
        assert r.passed and "uid=" in r.stdout, r
    finally:
        shutil.rmtree(binary.parent)


def test_degraded_mode_says_what_it_cannot_give(tmp_path):
    # Forced: no kernel wall at all, as on a machine without root or namespaces.
    bare = Walls()
    with pytest.warns(UserWarning, match="cannot give"):
        r = run_sandboxed("print('hello')", FAST, bare)
    assert r.passed, r
    for gap in ("throwaway uid", "network namespace", "/tmp", "no-new-privileges"):
        assert gap in r.isolation, (gap, r.isolation)
    # the prelude's guards stand in for the missing walls
    r = run_sandboxed(f"open({str(tmp_path / 'evil')!r}, 'w')", FAST, bare)
    assert not r.passed and "outside the sandbox" in r.reason, r
    r = run_sandboxed(
        "import socket\nsocket.create_connection(('1.1.1.1', 53))", FAST, bare
    )
    assert not r.passed and "disabled" in r.reason, r


def test_full_walls_have_nothing_missing():
    need("uid", "netns", "mounts", "no_new_privs")
    assert WALLS.missing() == []
    assert "cannot give" not in run_sandboxed("pass", FAST).isolation
