#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
# nvtd under a service manager: READY=1 only once listeners, vhost sockets and the control socket are up, STOPPING=1 at SIGTERM, journald priorities.
"""notify_test.py NVTD NVTCTL

Plays systemd's side of Type=notify with a datagram socket of its own (path
and abstract), so it runs anywhere; where systemd is PID 1 and we are root it
also starts nvtd with systemd-run -p Type=notify.
"""
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid

NVTD, NVTCTL = sys.argv[1], sys.argv[2]
failures = passes = 0


def check(what, ok, detail=""):
    global failures, passes
    if ok:
        passes += 1
    else:
        failures += 1
        print(f"FAIL: {what}" + (f": {detail}" if detail else ""))


def write_config(d):
    cfg = os.path.join(d, "nvt.cfg")
    with open(cfg, "w") as f:
        f.write(f"""
control_socket = "{d}/ctl.sock";
threads = 1;
listeners = ( {{ transport = "rdma"; address = "0.0.0.0"; port = 44201; }} );
subsystems = ( {{
	nqn = "nqn.2026-12.io.nvt:notify";
	allow_any_host = true;
	namespaces = ( {{ nsid = 1; backend = "ram"; size = "1M"; }} );
}} );
vhost = ( {{
	socket = "{d}/vhost.0";
	luns = ( {{ lun = 0; subsystem = "nqn.2026-12.io.nvt:notify"; nsid = 1; }} );
}} );
""")
    return cfg


def is_socket(path):
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except FileNotFoundError:
        return False


def control(path, line):
    """One control request, the reply's lines (nvtctl's job, done here without a retry)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(line.encode() + b"\n")
        s.shutdown(socket.SHUT_WR)
        reply = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            reply += b
    return reply.decode(errors="replace").splitlines()


def read_log(path):
    with open(path, errors="replace") as f:
        return f.read()


def recv_until(sock, key, proc, timeout=60):
    """Messages until one holds the line @key; [] if nvtd exits or time runs out."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(0.2)
        try:
            msg = sock.recv(4096).decode(errors="replace")
        except socket.timeout:
            if proc.poll() is not None:
                return got, False
            continue
        got.append(msg)
        if key in msg.split("\n"):
            return got, True
    return got, False


def run_notified(d, addr, label):
    """nvtd with NOTIFY_SOCKET=@addr: the ordering at READY=1 and at SIGTERM."""
    cfg = write_config(d)
    log = os.path.join(d, f"{label}.log")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + addr[1:] if addr.startswith("@") else addr)
    env = dict(os.environ, NOTIFY_SOCKET=addr)
    env.pop("JOURNAL_STREAM", None)
    with open(log, "w") as logf:
        proc = subprocess.Popen([NVTD, "-c", cfg], stderr=logf, env=env)
    try:
        msgs, ready = recv_until(sock, "READY=1", proc)
        # Freeze nvtd at once: whatever is not there yet was announced too early.
        if ready:
            os.kill(proc.pid, signal.SIGSTOP)
        check(f"{label}: READY=1 arrives", ready, f"messages {msgs}, log:\n{read_log(log)}")
        if not ready:
            return
        at_ready = read_log(log)
        check(f"{label}: the control socket exists at READY=1", is_socket(f"{d}/ctl.sock"))
        check(f"{label}: the vhost-user socket exists at READY=1", is_socket(f"{d}/vhost.0"))
        check(f"{label}: the listener was set up (listening or said why not) before READY=1",
              "listening on rdma 0.0.0.0:44201" in at_ready or "listener 0.0.0.0:44201" in at_ready,
              at_ready)
        check(f"{label}: STATUS= tells what is served",
              "STATUS=serving 1 subsystem(s);" in msgs[-1] and "1 vhost controller(s)" in msgs[-1],
              msgs[-1])
        check(f"{label}: nothing claimed STOPPING before READY",
              not any("STOPPING=1" in m for m in msgs), msgs)
        os.kill(proc.pid, signal.SIGCONT)
        try:
            reply = control(f"{d}/ctl.sock", "status")
        except OSError as e:
            reply = [f"{e}"]
        check(f"{label}: the control socket answers right after READY=1 (no retry)",
              reply and reply[-1] == "ok", reply)
        r = subprocess.run([NVTCTL, "-s", f"{d}/ctl.sock", "status"], capture_output=True)
        check(f"{label}: nvtctl status: exit 0", r.returncode == 0, r.stdout + r.stderr)

        proc.send_signal(signal.SIGTERM)
        msgs, stopping = recv_until(sock, "STOPPING=1", proc, timeout=30)
        check(f"{label}: STOPPING=1 at SIGTERM", stopping, msgs)
        check(f"{label}: STOPPING=1 carries a STATUS=", stopping and "STATUS=" in msgs[-1], msgs)
        rc = proc.wait(timeout=120)
        check(f"{label}: exit 0 after SIGTERM", rc == 0, f"rc {rc}, log:\n{read_log(log)}")
        check(f"{label}: no READY=1 a second time", not any("READY=1" in m for m in msgs), msgs)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
            proc.wait()
        sock.close()


def run_journal(d, stream_matches):
    """Fake journald: JOURNAL_STREAM naming (or not) the file stderr goes to."""
    cfg = write_config(d)
    log = os.path.join(d, "journal.log")
    open(log, "w").close()
    st = os.stat(log)
    env = dict(os.environ)
    # A NOTIFY_SOCKET nvtd cannot use: one warning line, and it serves anyway.
    env["NOTIFY_SOCKET"] = "relative/socket"
    env["JOURNAL_STREAM"] = (f"{st.st_dev}:{st.st_ino}" if stream_matches
                             else f"{st.st_dev}:{st.st_ino + 1}")
    with open(log, "a") as logf:
        proc = subprocess.Popen([NVTD, "-c", cfg], stderr=logf, env=env)
    deadline = time.monotonic() + 60
    while "ready:" not in read_log(log) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=120)
    text = read_log(log)
    lines = text.splitlines()
    label = "journal stream" if stream_matches else "JOURNAL_STREAM of another file"
    check(f"{label}: exit 0", rc == 0, f"rc {rc}\n{text}")
    if stream_matches:
        check(f"{label}: every line starts with a syslog priority <3>..<7>",
              lines and all(len(l) > 3 and l[0] == "<" and l[1] in "3467" and l[2] == ">"
                            for l in lines), text)
        check(f"{label}: info as <6>",
              any(l.startswith("<6>ready: 1 subsystem(s)") for l in lines), text)
        check(f"{label}: the bad NOTIFY_SOCKET is a warning, <4>",
              any(l.startswith("<4>notify: NOTIFY_SOCKET 'relative/socket'") for l in lines), text)
        check(f"{label}: no level words", "nvtd info:" not in text and "nvtd warn:" not in text, text)
    else:
        check(f"{label}: the plain format, exactly as without systemd",
              any(l.startswith("nvtd info: ready: 1 subsystem(s)") for l in lines) and
              any(l.startswith("nvtd warn: notify: NOTIFY_SOCKET") for l in lines) and
              not any(l.startswith("<") for l in lines), text)


def run_bad_config(d, stream_matches):
    """The loader's file:line errors: <3> on journald's stream, unchanged elsewhere."""
    cfg = os.path.join(d, "bad.cfg")
    with open(cfg, "w") as f:
        f.write("bogus = 1;\n")
    log = os.path.join(d, "bad.log")
    open(log, "w").close()
    st = os.stat(log)
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino + (0 if stream_matches else 1)}"
    with open(log, "a") as logf:
        rc = subprocess.run([NVTD, "-c", cfg], stderr=logf, env=env, timeout=60).returncode
    text = read_log(log)
    want = f"{cfg}:1: bogus: unknown setting\n"
    if stream_matches:
        check("bad config on journald's stream: exit 1, the error at <3>",
              rc == 1 and text == "<3>" + want, f"rc {rc}: {text!r}")
    else:
        check("bad config elsewhere: exit 1, the error exactly as always",
              rc == 1 and text == want, f"rc {rc}: {text!r}")


def run_systemd(d):
    """Where systemd is PID 1: the real thing, a transient Type=notify service."""
    if not os.path.isdir("/run/systemd/system") or not shutil.which("systemd-run") \
            or os.geteuid() != 0:
        print("note: systemd is not PID 1 here (or we are not root): checked READY=1 through "
              "our own socket only, not under systemd-run")
        return
    cfg = write_config(d)
    unit = f"nvtd-test-{uuid.uuid4().hex[:8]}"
    # Without --no-block, systemd-run returns once the start job is done: for
    # Type=notify that is when READY=1 arrived.
    r = subprocess.run(["systemd-run", f"--unit={unit}", "-p", "Type=notify",
                        "-p", "TimeoutStartSec=60", NVTD, "-c", cfg], capture_output=True)
    try:
        check("systemd-run: Type=notify start succeeds", r.returncode == 0, r.stderr)
        state = subprocess.run(["systemctl", "is-active", unit], capture_output=True, text=True)
        check("systemd-run: active after the start job", state.stdout.strip() == "active",
              state.stdout)
        try:
            reply = control(f"{d}/ctl.sock", "status")
        except OSError as e:
            reply = [str(e)]
        check("systemd-run: control socket answers once started", reply[-1:] == ["ok"], reply)
        subprocess.run(["systemctl", "stop", unit], capture_output=True)
        show = subprocess.run(["systemctl", "show", "-p", "Result", "-p", "ExecMainStatus", unit],
                              capture_output=True, text=True).stdout
        check("systemd-run: stopped with Result=success, status 0",
              "Result=success" in show and "ExecMainStatus=0" in show, show)
    finally:
        subprocess.run(["systemctl", "stop", unit], capture_output=True)
        subprocess.run(["systemctl", "reset-failed", unit], capture_output=True)


def main():
    with tempfile.TemporaryDirectory() as d:
        run_notified(d, os.path.join(d, "notify.sock"), "path socket")
    with tempfile.TemporaryDirectory() as d:
        run_notified(d, f"@nvt-notify-test-{os.getpid()}", "abstract socket")
    with tempfile.TemporaryDirectory() as d:
        run_journal(d, True)
    with tempfile.TemporaryDirectory() as d:
        run_journal(d, False)
    with tempfile.TemporaryDirectory() as d:
        run_bad_config(d, True)
        run_bad_config(d, False)
    with tempfile.TemporaryDirectory() as d:
        run_systemd(d)
    print(f"{passes} passed, {failures} failed")
    sys.exit(1 if failures else 0)


main()
