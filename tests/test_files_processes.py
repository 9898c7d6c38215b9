"""Files and processes: atomic outputs (symlinks, FIFOs, devices), signals during a write,
a closed stdout, fail-fast checks, fork safety of the collector pause, and a read-only
install whose kernels cannot be cached.

Some tests need permission bits to be enforced.  Root ignores them, so as root those tests
run the command in a child that first drops every capability (it stays uid 0 and can still
reach the interpreter, which may live under a private home; see ``unprivileged``).
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from viterbisample import engine
from viterbisample.io.atomic import TEMP_MARK, atomic_write
from viterbisample.cli import main

ROOT = Path(__file__).resolve().parents[1]
TEXT = b"The cat sat on the mat.\nhello world\n"

# Run as root, this drops every capability from the bounding set, then execs the command:
# the new program keeps uid 0 but has no CAP_DAC_OVERRIDE, so permission bits apply.
DROP_CAPABILITIES = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
PR_CAPBSET_DROP = 24
for cap in range(64):
    libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # fails (harmlessly) past the last capability
os.execv(sys.argv[1], sys.argv[1:])
"""


def unprivileged(argv: list[str]) -> list[str]:
    """``argv``, run so that permission bits are enforced (see the module docstring)."""
    if os.geteuid() != 0:
        return argv
    if not sys.platform.startswith("linux"):
        pytest.skip("running as root, and capabilities can only be dropped (prctl) on Linux")
    return [sys.executable, "-c", DROP_CAPABILITIES, *argv]


def make_read_only(path: Path) -> None:
    for folder, dirs, files in os.walk(path):
        for name in [*files, *dirs]:
            p = Path(folder, name)
            p.chmod(stat.S_IMODE(p.stat().st_mode) & ~0o222)
    path.chmod(0o555)


def make_writable(path: Path) -> None:
    path.chmod(0o755)
    for folder, dirs, files in os.walk(path):
        for name in [*files, *dirs]:
            p = Path(folder, name)
            p.chmod(stat.S_IMODE(p.stat().st_mode) | 0o200)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if TEMP_MARK in p.name)


def child_env() -> dict[str, str]:
    """The environment of a child ``python -m viterbisample.cli``: this checkout, little else."""
    return {"PYTHONPATH": str(ROOT), "PATH": os.environ.get("PATH", "")}


# --- atomic_write -------------------------------------------------------------------------


def test_replaces_a_file_keeping_its_mode_via_a_recognisable_temporary(tmp_path):
    out = tmp_path / "out.txt"
    out.write_bytes(b"old")
    out.chmod(0o600)
    seen = []

    def write(f):
        seen.extend(leftovers(tmp_path))
        f.write(b"new")

    atomic_write(out, write)
    assert out.read_bytes() == b"new" and stat.S_IMODE(out.stat().st_mode) == 0o600
    assert len(seen) == 1 and seen[0].startswith(".out.txt" + TEMP_MARK)
    assert leftovers(tmp_path) == []


def test_a_failed_write_keeps_the_old_file(tmp_path):
    out = tmp_path / "out.txt"
    out.write_bytes(b"old")

    def write(f):
        f.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(out, write)
    assert out.read_bytes() == b"old" and leftovers(tmp_path) == []


def test_a_symlink_stays_a_link_and_its_target_is_replaced_from_beside_it(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "links").mkdir()
    target = tmp_path / "real" / "model.json"
    target.write_bytes(b"old")
    link = tmp_path / "links" / "model.json"
    link.symlink_to(Path("..", "real", "model.json"))
    temps = []
    atomic_write(link, lambda f: (temps.extend(leftovers(tmp_path / "real")), f.write(b"new")))
    assert link.is_symlink() and os.readlink(link) == str(Path("..", "real", "model.json"))
    assert target.read_bytes() == b"new"
    assert len(temps) == 1 and leftovers(tmp_path / "links") == leftovers(tmp_path / "real") == []


def test_a_dangling_symlink_gets_its_target_created(tmp_path):
    link = tmp_path / "link"
    link.symlink_to("target")
    atomic_write(link, lambda f: f.write(b"x"))
    assert link.is_symlink() and (tmp_path / "target").read_bytes() == b"x"


def test_a_fifo_is_written_through_not_replaced(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    atomic_write(fifo, lambda f: f.write(b"through the pipe"))
    reader.join(10)
    assert received == [b"through the pipe"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and leftovers(tmp_path) == []


def test_a_character_device_is_written_through_not_replaced():
    before = os.stat(os.devnull)
    atomic_write(os.devnull, lambda f: f.write(b"discarded"))
    after = os.stat(os.devnull)
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
    assert after.st_ino == before.st_ino


def test_a_directory_is_refused_before_writing(tmp_path):
    calls = []
    with pytest.raises(IsADirectoryError, match="is a directory"):
        atomic_write(tmp_path, calls.append)
    assert calls == []


def test_cli_output_onto_a_symlink_and_onto_dev_null(tmp_path, capsysbinary):
    src = tmp_path / "in.txt"
    src.write_bytes(TEXT)
    (tmp_path / "real.txt").write_bytes(b"old")
    (tmp_path / "link.txt").symlink_to("real.txt")
    assert main(["encode", str(src), "--format", "ids", "-o", str(tmp_path / "link.txt")]) == 0
    assert main(["encode", str(src), "--format", "ids"]) == 0
    assert (tmp_path / "real.txt").read_bytes() == capsysbinary.readouterr().out
    assert (tmp_path / "link.txt").is_symlink()
    assert main(["encode", str(src), "--format", "ids", "-o", os.devnull]) == 0
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


# --- signals, closed stdout, fail-fast ----------------------------------------------------


@pytest.mark.parametrize("fmt, signum, code", [
    ("ids", signal.SIGTERM, 143),
    ("ids", signal.SIGINT, 130),
    ("megatron", signal.SIGTERM, 143),
])
def test_a_signal_during_a_write_removes_the_temporary_files(tmp_path, fmt, signum, code):
    out = tmp_path / "out"
    # Input from a pipe we keep open: the command is caught mid-write, waiting for more.
    # The child starts with the signal's default disposition whatever this process has
    # (a shell ignores SIGINT in a background job, and a child inherits that).
    proc = subprocess.Popen(
        [sys.executable, "-m", "viterbisample.cli", "encode", "--format", fmt, "-o", str(out)],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(),
        preexec_fn=lambda: signal.signal(signum, signal.SIG_DFL),
    )
    try:
        proc.stdin.write(TEXT * 1000)
        proc.stdin.flush()
        deadline = time.monotonic() + 60
        while not leftovers(tmp_path):
            assert proc.poll() is None and time.monotonic() < deadline, "no temporary file appeared"
            time.sleep(0.05)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code
    assert b"Traceback" not in err and err.count(b"\n") <= 1
    assert list(tmp_path.iterdir()) == []


def test_closed_stdout_is_a_one_line_error(tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(TEXT)

    def run(*args: str) -> subprocess.CompletedProcess:
        # The child closes its stdout, then becomes the command: `vsample ... >&-`.
        close_then_exec = "import os, sys; os.close(1); os.execv(sys.executable, sys.argv[1:])"
        return subprocess.run(
            [sys.executable, "-c", close_then_exec, sys.executable, "-m", "viterbisample.cli", *args],
            capture_output=True, env=child_env(),
        )

    r = run("encode", str(src))
    assert r.returncode == 1 and b"Traceback" not in r.stderr
    assert r.stderr == b"vsample: error: standard output is closed; give -o FILE\n"
    r = run("encode", str(src), "-o", str(tmp_path / "out.txt"))  # stdout is not needed
    assert r.returncode == 0 and (tmp_path / "out.txt").read_bytes().count(b"\n") == 2


def test_train_checks_the_output_folder_before_training(tmp_path, capsys, monkeypatch):
    def must_not_train(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(sys.modules["viterbisample.train"], "train", must_not_train)
    src = tmp_path / "in.txt"
    src.write_bytes(TEXT)
    args = ["train", str(src), "--vocab-size", "300", "-q", "-o"]
    assert main([*args, str(tmp_path / "missing" / "x.json")]) == 1
    err = capsys.readouterr().err
    assert err == f"vsample: error: output folder does not exist: {tmp_path / 'missing'}\n"
    assert main([*args, str(tmp_path)]) == 1
    assert "is a directory" in capsys.readouterr().err


def test_train_refuses_a_read_only_output_folder_at_once(tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(TEXT)
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        start = time.monotonic()
        r = subprocess.run(unprivileged([
            sys.executable, "-m", "viterbisample.cli", "train", str(src), "--vocab-size", "300",
            "-o", str(folder / "x.json"),
        ]), capture_output=True, env=child_env())
    finally:
        folder.chmod(0o755)
    assert r.returncode == 1, r.stderr
    assert r.stderr == f"vsample: error: output folder is not writable: {folder}\n".encode()
    assert list(folder.iterdir()) == [] and time.monotonic() - start < 30


# --- fork safety of the collector pause ---------------------------------------------------


def wait_for_child(pid: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError("the forked child hung")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")  # Python 3.12+: forking with threads
@pytest.mark.parametrize("held", ["pause", "lock"])
def test_a_fork_during_another_threads_pause_leaves_the_child_collecting(held):
    assert gc.isenabled()
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        if held == "pause":  # a batch call in progress
            with engine.gc_paused():
                entered.set()
                release.wait(30)
        else:  # caught inside the pause's bookkeeping
            with engine._gc_lock:
                entered.set()
                release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert entered.wait(10)
        assert gc.isenabled() is (held == "lock")
        pid = os.fork()
        if pid == 0:  # the child: report through the exit code only, never return into pytest
            code = 3
            try:
                code = 0 if gc.isenabled() else 1
                with engine.gc_paused():  # its own pauses still work (and do not hang)
                    code = code or (2 if gc.isenabled() else 0)
                code = code or (0 if gc.isenabled() else 1)
            finally:
                os._exit(code)
        assert wait_for_child(pid) == 0
    finally:
        release.set()
        thread.join()
    assert gc.isenabled()


# --- a read-only install -------------------------------------------------------------------


def test_a_read_only_install_with_a_read_only_home_imports_and_runs(tmp_path, default_tok):
    """No writable __pycache__, no writable ~/.cache: the kernels compile uncached, with
    one warning.  Compiling the kernels encode needs takes ~10-30 s."""
    install = tmp_path / "install"
    home = tmp_path / "home"
    home.mkdir()
    subprocess_check = """
import os
def writable(folder):
    try:
        open(os.path.join(folder, "probe"), "wb").close()
    except OSError:
        return False
    os.unlink(os.path.join(folder, "probe"))
    return True
package = os.path.join(os.environ["PYTHONPATH"], "viterbisample")
print(writable(package), writable(os.environ["HOME"]))
import viterbisample
print(viterbisample.__file__)
print(viterbisample.Tokenizer.default().encode("hello world"))
"""
    shutil.copytree(ROOT / "viterbisample", install / "viterbisample",
                    ignore=shutil.ignore_patterns("__pycache__"))
    make_read_only(install)
    make_read_only(home)
    try:
        r = subprocess.run(
            unprivileged([sys.executable, "-c", subprocess_check]), capture_output=True,
            env={"PYTHONPATH": str(install), "HOME": str(home), "PATH": ""}, timeout=240,
            cwd=tmp_path,  # not the checkout: `python -c` imports from the current folder first
        )
    finally:
        make_writable(install)
        make_writable(home)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    lines = r.stdout.decode().splitlines()
    assert lines[0] == "False False", "the install or HOME was writable: nothing was tested"
    assert lines[1] == str(install / "viterbisample" / "__init__.py")
    assert lines[2] == str(default_tok.encode("hello world"))
    assert r.stderr.count(b"RuntimeWarning: viterbisample: no writable place to cache") == 1
    assert b"Traceback" not in r.stderr
    assert not any((install / "viterbisample").rglob("__pycache__"))
