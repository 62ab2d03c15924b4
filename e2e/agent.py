"""The node agent: does many small things on one host in one process and answers with one JSON
document, so the suite pays one SSH round trip per node, not one per pod or per matrix cell.
Sent over SSH on stdin (`sudo python3 - REQUEST`, REQUEST being argv[1]); never imported.
The harness renders every command it runs (e2e.probes); the agent only executes them.

Written for Python 2.7 (CentOS 7's /usr/bin/python) and Python 3, standard library only.

op "probe": TCP probes, concurrently, each in a thread of its own; a probe with `netns` first
moves its thread into that network namespace (setns(2) acts on the calling thread only), so its
socket belongs to the pod.
  {"op": "probe", "parallel": 8,
   "cells": [{"id": "a->b", "netns": "/proc/123/ns/net" | null, "host": "10.244.1.5",
              "port": 8080, "send": "", "timeout": 5.0}, ...]}
  -> {"results": [{"id": "a->b", "ok": true, "answer": "10.244.0.7\\n", "error": "",
                   "connect_s": 0.004, "total_s": 0.010, "retransmits": 0}, ...]}
  `retransmits` is tcpi_total_retrans read right after connect: any retransmit at that point is
  a retransmitted SYN (e.g. a tunnel dropping packets with a bad checksum).
  A cell with "proto": "udp" sends one datagram (`send`, or "netlab\n") from a socket of its
  own (a new source port: a new conntrack entry; `sport`: that source port, the same flow as
  an earlier probe's) and reads one datagram back within `timeout`.
  A cell with "proto": "dns" asks the server at host:port for the A records of `name` over UDP
  (one query, recursion desired) and answers "NAME A IP[ IP...]" or "NAME RCODE n".
  A UDP cell with "datagrams" (a list of texts) sends each from the same socket (one flow:
  one conntrack entry, so one endpoint of a Service answers them all) and reads one answer to
  each; its answer is theirs joined by newlines (agnhost's `clientip` then `hostname`).

op "steps": for each job (one after the other, or `parallel` at a time), its argv steps in order
until one fails (or all of them with `keep_going`). The Kubernetes driver uses it to run one
`kubectl exec` per source pod at once on the control plane.
  {"op": "steps", "parallel": 4,
   "jobs": [{"id": "pod-a", "keep_going": false,
             "steps": [{"argv": [...], "stdin": null, "timeout": 60}]}]}
  -> {"jobs": [{"id": "pod-a", "ok": true,
                "steps": [{"exit": 0, "stdout": "...", "stderr": "", "timed_out": false}]}]}
  A step that outlives its timeout is killed with its whole process group (`timed_out`).

`serve` mode (argv[1] == "serve"): one long-lived agent per node and suite process, fed on
stdin one request per line, answering each with one JSON line (a request with an "id" runs
concurrently with others and is answered with its id), so a command costs neither an
SSH session, nor sudo, nor a Python start (about 0.7 s together under QEMU TCG). It first says
{"ready": true, "pid": N}. Started as `sudo -n python3 -u -c BOOT serve` with BOOT reading
this file's text from stdin (its length on the first line): see e2e/session.py.

op "flowserver" and op "flows": the live flows of the disruption ledger (e2e/ledger.py), each
run as a process of its own (a transient unit in a pod's network namespace), for as long as a
fault lasts. The server echoes every byte of every TCP connection and sends every UDP datagram
back, on `port`, until the `stop` file exists (or `max_s`):
  {"op": "flowserver", "port": 7101, "stop": "/run/netlab/flows/T.stop", "max_s": 1800}
The client, toward one target pod: (1) one TCP connection held open, a numbered line sent every
`interval` s, each echoed line's arrival timed (a gap over `stall_ms` is a stall); (2) numbered
UDP datagrams at the same rate, each echo counted (lost, reordered, duplicated); (3) a new
connection to the pod's echo server (`echo_port`) every `connect_interval` s, connect + answer +
close, its failures timed. Every `status_s` it writes what it has (`status`); it notes when
each of `marks` (name -> file) first exists; at `stop` it drains and writes `result`:
  {"op": "flows", "host": "10.244.1.5", "port": 7101, "echo_port": 8080, "interval": 0.05,
   "connect_interval": 0.25, "stall_ms": 1000, "status": PATH, "result": PATH, "stop": PATH,
   "marks": {"inject": PATH, "healed": PATH}, "max_s": 1800}
  -> {"end_ms": N, "marks": {"inject": MS, ...}, "tcp": {...}, "udp": {...}, "connect": {...}}
Times are milliseconds since the client started, on its own clock.
"""

import ctypes
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

CLONE_NEWNET = 0x40000000
TCP_INFO = 11
TOTAL_RETRANS_OFFSET = 100  # struct tcp_info: 8 bytes of u8 fields, then u32s; total_retrans
MAX_ANSWER = 4096
MAX_OUTPUT = 65536


def setns(path):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, "setns(%s): %s" % (path, os.strerror(err)))
    finally:
        os.close(fd)


def retransmits(sock):
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, 104)
        return struct.unpack_from("I", info, TOTAL_RETRANS_OFFSET)[0]
    except (OSError, struct.error):
        return -1


def probe(cell):
    result = {
        "id": cell["id"],
        "ok": False,
        "answer": "",
        "error": "",
        "connect_s": None,
        "total_s": None,
        "retransmits": None,
    }
    timeout = float(cell.get("timeout", 5))
    start = time.time()
    sock = None
    try:
        if cell.get("netns"):
            setns(cell["netns"])
        proto = cell.get("proto") or "tcp"
        if proto == "udp":
            probe_udp(cell, result, timeout)
            return result
        if proto == "dns":
            probe_dns(cell, result, timeout)
            return result
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect((cell["host"], int(cell["port"])))
        result["connect_s"] = round(time.time() - start, 4)
        result["retransmits"] = retransmits(sock)
        payload = cell.get("send") or ""
        if payload:
            sock.sendall(payload.encode("utf-8"))
        chunks = []
        size = 0
        while size < MAX_ANSWER:
            data = sock.recv(MAX_ANSWER - size)
            if not data:
                break
            chunks.append(data)
            size += len(data)
        result["answer"] = b"".join(chunks).decode("utf-8", "replace")
        result["ok"] = True
    except Exception as exc:  # every failure is an answer
        result["error"] = "%s: %s" % (type(exc).__name__, exc)
    finally:
        result["total_s"] = round(time.time() - start, 4)
        if sock is not None:
            sock.close()
    return result


def probe_udp(cell, result, timeout):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.settimeout(timeout)
        payload = (cell.get("send") or "netlab\n").encode("utf-8")
        if cell.get("sport"):  # one flow across probes: what a conntrack entry outlives
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("", int(cell["sport"])))
        # connected, as a real client's socket: an answer from another address (a reply that
        # missed the reverse NAT) is not taken
        sock.connect((cell["host"], int(cell["port"])))
        questions = cell.get("datagrams")
        if questions:  # one flow, several questions: one endpoint answers them all
            answers = []
            for question in questions:
                sock.send(question.encode("utf-8"))
                answers.append(sock.recv(MAX_ANSWER).decode("utf-8", "replace"))
            result["answer"] = "\n".join(answers)
            result["ok"] = True
            return
        sock.send(payload)
        data = sock.recv(MAX_ANSWER)
        result["answer"] = data.decode("utf-8", "replace")
        result["ok"] = True
    finally:
        sock.close()


def dns_query(name, ident):
    """A DNS query for NAME's A records (RFC 1035 4.1), recursion desired."""
    header = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    labels = b"".join(
        struct.pack("!B", len(part)) + part.encode("ascii") for part in name.strip(".").split(".")
    )
    return header + labels + b"\x00" + struct.pack("!HH", 1, 1)


def skip_name(data, offset):
    """The offset after the (possibly compressed) name at `offset`."""
    while True:
        length = bytearray(data[offset : offset + 1])[0]
        if length & 0xC0 == 0xC0:
            return offset + 2
        if length == 0:
            return offset + 1
        offset += 1 + length


def parse_dns_answer(data, ident):
    """(rcode, [A addresses]) of a DNS answer to query `ident`."""
    got, flags, questions, answers = struct.unpack("!HHHH", data[:8])
    if got != ident:
        raise ValueError("answer id %d, asked %d" % (got, ident))
    offset = 12
    for _ in range(questions):
        offset = skip_name(data, offset) + 4
    found = []
    for _ in range(answers):
        offset = skip_name(data, offset)
        rtype, _rclass, _ttl, length = struct.unpack("!HHIH", data[offset : offset + 10])
        offset += 10
        if rtype == 1 and length == 4:
            found.append(socket.inet_ntoa(data[offset : offset + 4]))
        offset += length
    return flags & 0x000F, found


def probe_dns(cell, result, timeout):
    ident = (os.getpid() + threading.current_thread().ident) & 0xFFFF
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.settimeout(timeout)
        sock.connect((cell["host"], int(cell["port"])))
        sock.send(dns_query(cell["name"], ident))
        rcode, found = parse_dns_answer(sock.recv(MAX_ANSWER), ident)
        if rcode:
            result["answer"] = "%s RCODE %d" % (cell["name"], rcode)
        else:
            result["answer"] = "%s A %s" % (cell["name"], " ".join(found))
        result["ok"] = True
    finally:
        sock.close()


def bounded(work, items, parallel):
    """work(item) for every item, at most `parallel` at once, each in a thread of its own
    (a probe's setns must not leak into another's); results in the items' order."""
    slots = threading.Semaphore(max(1, int(parallel)))
    results = [None] * len(items)

    def run(index):
        try:
            results[index] = work(items[index])
        finally:
            slots.release()

    threads = []
    for index in range(len(items)):
        slots.acquire()
        thread = threading.Thread(target=run, args=(index,))
        thread.daemon = True
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    return results


def op_probe(request):
    return {"results": bounded(probe, request["cells"], request.get("parallel", 8))}


def execute(argv, stdin, env=None, timeout=60):
    """(exit code, stdout, stderr, timed out): a timed-out command is killed with its whole
    process group, so a grandchild holding the pipes cannot keep us waiting."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    options = {
        "stdin": subprocess.PIPE,
        "stdout": subprocess.PIPE,
        "stderr": subprocess.PIPE,
        "env": full_env,
        "close_fds": True,  # Python 2.7's default is False: a command run beside this one in
        # another thread would inherit our pipes and hold our communicate() until it ends
    }
    if sys.version_info[0] >= 3:
        options["start_new_session"] = True
    else:  # Python 2.7 has no start_new_session (and no trailing comma after **options)
        options["preexec_fn"] = os.setsid
    try:
        proc = subprocess.Popen(argv, **options)
    except OSError as exc:
        return 127, "", "%s: %s" % (argv[0], exc), False
    fired = []

    def kill():
        fired.append(True)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        out, err = proc.communicate((stdin or "").encode("utf-8"))
    finally:
        timer.cancel()
    code = proc.returncode if proc.returncode >= 0 else 124
    return (
        code,
        out.decode("utf-8", "replace")[:MAX_OUTPUT],
        err.decode("utf-8", "replace")[:MAX_OUTPUT],
        bool(fired),
    )


def run_job(job):
    done = []
    ok = True
    for step in job["steps"]:
        code, out, err, timed_out = execute(
            step["argv"], step.get("stdin"), None, step.get("timeout", 60)
        )
        outcome = {"exit": code, "stdout": out, "stderr": err, "timed_out": timed_out}
        done.append(outcome)
        if outcome["exit"] != 0:
            ok = False
            if not job.get("keep_going"):
                break
    return {"id": job["id"], "ok": ok, "steps": done}


def op_steps(request):
    """Jobs one after the other, or `parallel` of them at a time."""
    return {"jobs": bounded(run_job, request["jobs"], request.get("parallel", 1))}


# --- live flows (the disruption ledger) -----------------------------------------------------

CLOCK = getattr(time, "monotonic", time.time)  # Python 2.7 has no monotonic clock
MAX_WINDOWS = 100  # loss windows kept per flow (the count of the rest is kept)


def write_json(path, doc):
    """Written whole, then renamed: a reader never sees half a document."""
    partial = path + ".partial"
    with open(partial, "w") as handle:
        json.dump(doc, handle)
    os.rename(partial, path)


def until_stopped(stop, deadline, every=0.1, tick=None):
    """Sleep in steps until the `stop` file exists or `deadline` (CLOCK) passes; `tick()`
    each step. Returns "stop" or "max_s"."""
    while True:
        if tick is not None:
            tick()
        if stop and os.path.exists(stop):
            return "stop"
        if CLOCK() >= deadline:
            return "max_s"
        time.sleep(every)


def op_flowserver(request):
    port = int(request["port"])
    deadline = CLOCK() + float(request.get("max_s", 1800))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("", port))
    tcp.listen(64)
    tcp.settimeout(0.5)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("", port))
    udp.settimeout(0.5)
    counts = {"connections": 0, "datagrams": 0}

    def echo(conn):
        try:
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                conn.sendall(data)
        except Exception:  # the peer went: the client counts it
            return
        finally:
            conn.close()

    def accept():
        while True:
            try:
                conn, _ = tcp.accept()
            except socket.timeout:
                continue
            except socket.error:
                return
            conn.settimeout(None)
            counts["connections"] += 1
            spawn(echo, conn)

    def datagrams():
        while True:
            try:
                data, peer = udp.recvfrom(65535)
                udp.sendto(data, peer)
                counts["datagrams"] += 1
            except socket.timeout:
                continue
            except socket.error:
                continue

    spawn(accept)
    spawn(datagrams)
    ended = until_stopped(request.get("stop") or "", deadline, 0.2)
    return {"ended": ended, "connections": counts["connections"], "datagrams": counts["datagrams"]}


def spawn(target, *args):
    thread = threading.Thread(target=target, args=args)
    thread.daemon = True  # the flows end with their process
    thread.start()
    return thread


def loss_windows(lost_runs, times):
    """Runs of lost sequence numbers (first, last; 1-based) -> windows [start_ms, end_ms]: from
    the send time of the first lost one to that of the next one that came back (None: none
    did, the window was still open at the end)."""
    out = []
    for first, last in lost_runs:
        end = times[last] if last < len(times) else None
        out.append([times[first - 1], end])
    return out


def missing_runs(sent, received):
    """(first, last) of every run of sequence numbers 1..sent not in `received`."""
    runs = []
    start = None
    for seq in range(1, sent + 1):
        if seq not in received:
            if start is None:
                start = seq
        elif start is not None:
            runs.append((start, seq - 1))
            start = None
    if start is not None:
        runs.append((start, sent))
    return runs


def capped(windows):
    return windows[:MAX_WINDOWS], max(0, len(windows) - MAX_WINDOWS)


class FlowClient(object):
    """The client side of op "flows": three flows toward one pod, timed on this clock."""

    def __init__(self, request):
        self.request = request
        self.host = request["host"]
        self.interval = float(request.get("interval", 0.05))
        self.stall_ms = int(request.get("stall_ms", 1000))
        self.t0 = CLOCK()
        self.running = threading.Event()
        self.running.set()
        self.tcp = {
            "connected": False,
            "sent": 0,
            "echoed": 0,
            "retransmits": None,
            "error": "",
            "stalls": [],
            "stalls_more": 0,
        }
        self.udp = {
            "sent": 0,
            "received": 0,
            "reordered": 0,
            "duplicated": 0,
            "send_errors": 0,
            "recv_errors": 0,
            "windows": [],
            "windows_more": 0,
            "lost": 0,
            "warmup": 0,  # datagrams sent before the first answer (the server starting)
        }
        self.connect = {
            "attempts": 0,
            "failures": 0,
            "windows": [],
            "windows_more": 0,
            "answered_by": [],
            "last_error": "",
            "warmup": 0,  # attempts before the first answer (the server starting)
        }
        self.marks = {}
        self.tcp_last = 0
        self.tcp_sock = None
        self.udp_times = []  # send time of every datagram, by sequence number - 1
        self.udp_seen = set()
        self.udp_max = 0
        self.last_status = 0.0

    def now_ms(self):
        return int((CLOCK() - self.t0) * 1000)

    def paced(self, step):
        """step(n) every `interval` s while running, on an absolute schedule."""
        due = CLOCK()
        n = 0
        while self.running.is_set():
            n += 1
            if step(n) is False:
                return
            due += self.interval
            time.sleep(max(0.0, due - CLOCK()))

    # (1) one TCP connection, a numbered line every interval, every echo's arrival timed
    def tcp_reader(self, sock):
        tcp = self.tcp
        buf = b""
        while True:
            try:
                data = sock.recv(4096)
            except socket.timeout:
                if not self.running.is_set() and tcp["echoed"] >= tcp["sent"]:
                    return
                continue
            except Exception as exc:
                tcp["error"] = tcp["error"] or "%s: %s" % (type(exc).__name__, exc)
                return
            if not data:
                tcp["error"] = tcp["error"] or "closed by the peer"
                return
            lines = (buf + data).split(b"\n")
            buf = lines.pop()
            for _ in lines:
                t = self.now_ms()
                if t - self.tcp_last > self.stall_ms:
                    tcp["stalls"].append([self.tcp_last, t])
                self.tcp_last = t
                tcp["echoed"] += 1

    def tcp_stream(self):
        tcp = self.tcp
        sock = None
        give_up = CLOCK() + float(self.request.get("warmup_s", 30))
        while sock is None:  # the server may not listen yet: the flows start together
            try:
                sock = socket.create_connection((self.host, int(self.request["port"])), 5)
            except Exception as exc:
                tcp["error"] = "connect: %s: %s" % (type(exc).__name__, exc)
                if CLOCK() > give_up or not self.running.is_set():
                    return
                time.sleep(0.2)
        tcp["error"] = ""
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        sock.settimeout(0.5)  # a send that cannot go out in 0.5 s: the buffer is full
        tcp["connected"] = True
        self.tcp_last = self.now_ms()
        self.tcp_sock = sock
        spawn(self.tcp_reader, sock)

        def send(seq):
            if tcp["error"]:
                return False
            try:
                sock.sendall(b"%d\n" % seq)
            except Exception as exc:
                tcp["error"] = "send: %s: %s" % (type(exc).__name__, exc)
                return False
            tcp["sent"] = seq
            return True

        self.paced(send)

    # (2) numbered UDP datagrams, each echo counted
    def udp_reader(self, sock):
        udp = self.udp
        while True:
            try:
                data = sock.recv(2048)
            except socket.timeout:
                if not self.running.is_set():
                    return
                continue
            except Exception:  # an ICMP error on the connected socket
                udp["recv_errors"] += 1
                time.sleep(0.01)
                continue
            try:
                seq = int(data.strip())
            except ValueError:
                continue
            if seq in self.udp_seen:
                udp["duplicated"] += 1
                continue
            if not self.udp_seen:  # the first answer: datagrams before it were the warm-up
                udp["warmup"] = seq - 1
            self.udp_seen.add(seq)
            udp["received"] += 1
            if seq < self.udp_max:
                udp["reordered"] += 1
            self.udp_max = max(self.udp_max, seq)

    def udp_stream(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.connect((self.host, int(self.request["port"])))
        sock.settimeout(0.5)
        spawn(self.udp_reader, sock)

        def send(seq):
            self.udp_times.append(self.now_ms())
            self.udp["sent"] = seq
            try:
                sock.send(b"%d\n" % seq)
            except Exception:
                self.udp["send_errors"] += 1
            return True

        self.paced(send)

    # (3) a new connection to the pod's echo server, again and again
    def connect_once(self, timeout):
        """Connect, read the answer's first line, close: the answerer's name, or raise."""
        sock = socket.create_connection((self.host, int(self.request["echo_port"])), timeout)
        try:
            sock.settimeout(timeout)
            answer = b""
            while b"\n" not in answer and len(answer) < MAX_ANSWER:
                data = sock.recv(MAX_ANSWER)
                if not data:
                    break
                answer += data
        finally:
            sock.close()
        words = answer.decode("utf-8", "replace").split()
        if not words:
            raise ValueError("closed without an answer")
        return words[1] if len(words) >= 2 else ""

    def connects(self):
        conn = self.connect
        every = float(self.request.get("connect_interval", 0.25))
        timeout = float(self.request.get("connect_timeout", 2.0))
        opened = None  # start of the failure window being measured
        due = CLOCK()
        while self.running.is_set():
            start = self.now_ms()
            try:
                name = self.connect_once(timeout)
                ok = True
            except Exception as exc:
                conn["last_error"] = "%s: %s" % (type(exc).__name__, exc)
                ok = False
            if not ok and not conn["attempts"] - conn["failures"]:
                conn["warmup"] += 1  # no answer yet ever: the server is still starting
                due += every
                time.sleep(max(0.0, due - CLOCK()))
                continue
            conn["attempts"] += 1
            if not ok:
                conn["failures"] += 1
                opened = start if opened is None else opened
            else:
                if name and name not in conn["answered_by"]:
                    conn["answered_by"] = (conn["answered_by"] + [name])[:5]
                if opened is not None:
                    conn["windows"].append([opened, start])
                    opened = None
            due += every
            time.sleep(max(0.0, due - CLOCK()))
        if opened is not None:
            conn["windows"].append([opened, None])

    def status(self):
        return {
            "t_ms": self.now_ms(),
            "marks": self.marks,
            "tcp": {
                "connected": self.tcp["connected"],
                "sent": self.tcp["sent"],
                "echoed": self.tcp["echoed"],
                "error": self.tcp["error"],
            },
            "udp": {"sent": self.udp["sent"], "received": self.udp["received"]},
            "connect": {"attempts": self.connect["attempts"], "failures": self.connect["failures"]},
        }

    def tick(self):
        for name, path in (self.request.get("marks") or {}).items():
            if name not in self.marks and os.path.exists(path):
                self.marks[name] = self.now_ms()
        every = float(self.request.get("status_s", 1))
        if self.request.get("status") and CLOCK() - self.last_status >= every:
            self.last_status = CLOCK()
            write_json(self.request["status"], self.status())

    def tcp_in_flight(self):
        return not self.tcp["error"] and self.tcp["echoed"] < self.tcp["sent"]

    def udp_in_flight(self):
        """A datagram of the last 2 s not back yet (older ones are lost, not late)."""
        sent = self.udp["sent"]
        recent = range(max(1, sent - int(2 / self.interval)), sent + 1)
        return any(seq not in self.udp_seen for seq in recent)

    def finish(self, ended, end_ms):
        """Drain what is in flight, then the figures."""
        tcp, udp = self.tcp, self.udp
        drain = CLOCK() + 3
        while CLOCK() < drain and (self.tcp_in_flight() or self.udp_in_flight()):
            time.sleep(0.05)
        if self.tcp_sock is not None:
            tcp["retransmits"] = retransmits(self.tcp_sock)
            if tcp["error"] or tcp["echoed"] < tcp["sent"]:  # no progress until the end
                tcp["stalls"].append([self.tcp_last, None])
        runs = [r for r in missing_runs(udp["sent"], self.udp_seen) if r[0] > udp["warmup"]]
        udp["lost"] = sum(last - first + 1 for first, last in runs)
        udp["windows"], udp["windows_more"] = capped(loss_windows(runs, self.udp_times))
        tcp["stalls"], tcp["stalls_more"] = capped(tcp["stalls"])
        self.connect["windows"], self.connect["windows_more"] = capped(self.connect["windows"])
        return {
            "ended": ended,
            "end_ms": end_ms,
            "marks": self.marks,
            "interval": self.interval,
            "stall_ms": self.stall_ms,
            "tcp": tcp,
            "udp": udp,
            "connect": self.connect,
        }

    def run(self):
        flows = [spawn(self.tcp_stream), spawn(self.udp_stream), spawn(self.connects)]
        deadline = self.t0 + float(self.request.get("max_s", 1800))
        ended = until_stopped(self.request.get("stop") or "", deadline, 0.1, self.tick)
        end_ms = self.now_ms()
        self.running.clear()
        for thread in flows:
            thread.join(10)
        answer = self.finish(ended, end_ms)
        if self.request.get("result"):
            write_json(self.request["result"], answer)
        return answer


def op_flows(request):
    return FlowClient(request).run()


OPS = {"probe": op_probe, "steps": op_steps, "flowserver": op_flowserver, "flows": op_flows}


def serve():
    """One request per stdin line, one JSON answer per stdout line, until stdin closes. A
    request with an "id" runs in a thread of its own and its answer carries the id (answers
    come as they are ready, so calls overlap); one without is answered before the next line."""
    written = threading.Lock()

    def write(answer):
        with written:
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()

    def handle(request):
        try:
            answer = OPS[request["op"]](request)
        except Exception as exc:  # a bad request is answered, the agent stays up
            answer = {"error": "%s: %s" % (type(exc).__name__, exc)}
        if "id" in request:
            answer["id"] = request["id"]
        write(answer)

    write({"ready": True, "pid": os.getpid()})
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        try:
            request = json.loads(line)
        except ValueError as exc:
            write({"error": "%s: %s" % (type(exc).__name__, exc)})
            continue
        if isinstance(request, dict) and "id" in request:
            thread = threading.Thread(target=handle, args=(request,))
            thread.daemon = True  # stdin closed: the agent ends, unfinished work with it
            thread.start()
        else:
            handle(request)


def main():
    if sys.argv[1:] == ["serve"]:
        serve()
        return
    request = json.loads(sys.argv[1])
    answer = OPS[request["op"]](request)
    sys.stdout.write(json.dumps(answer))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
