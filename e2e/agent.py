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


OPS = {"probe": op_probe, "steps": op_steps}


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
