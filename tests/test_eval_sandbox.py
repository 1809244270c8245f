"""The sandbox of Chapter 5 against hostile programs: each is contained, fails with its reason, and leaves the
host and the harness running. Every file the tests touch lives in pytest's temporary directories."""

import socket
import subprocess
import sys
import textwrap

import pytest

from llmbook.evaluate import Limits, run_sandboxed

FAST = Limits(wall_s=2, cpu_s=5)


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
    r = run_sandboxed(program, FAST)
    assert not r.passed and reason in r.reason, (name, r)
    assert r.seconds < FAST.wall_s + 5


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


def test_files_outside_are_safe(tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    for program in (
        f"import os\nos.remove({str(precious)!r})",
        f"import shutil\nshutil.rmtree({str(tmp_path)!r})",
        f"open({str(tmp_path / 'evil.txt')!r}, 'w').write('owned')",
        f"open({str(precious)!r}, 'a').write('appended')",
    ):
        r = run_sandboxed(program, FAST)
        assert not r.passed and "PermissionError" in r.reason, (program, r)
    assert precious.read_text() == "keep me" and not (tmp_path / "evil.txt").exists()


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
