"""Python's inter-process machinery in the sandbox, judged against the same script run natively.

Why: asyncio, selectors and multiprocessing are how most Python services talk to themselves.
They lean on every IPC path the sentry serves at once: unix sockets with many concurrent
peers and large buffers, epoll/poll/select readiness, SCM_RIGHTS (multiprocessing's
forkserver, `reduction.send_handle`, `socket.send_fds`), POSIX semaphores and shared memory
(files in /dev/shm mapped MAP_SHARED by sem_open and shm_open), anonymous shared mappings
across fork, signals turned into wakeup-fd writes, and processes started by fork, by a
fork server and by exec (spawn).  Each script asserts its own results and prints a summary
free of pids, fds and times; the sandbox must print the same and exit the same way.

The scripts are written to files (spawn re-imports the main module by path) in the test's
directory, which the sandbox sees at the same path through its default root, the host's /
under the in-memory overlay; sockets and semaphores live in the sandbox's /tmp and /dev/shm.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import pytest

from harness import assert_same_output, describe, env_flags, run_native, run_sandbox

pytestmark = pytest.mark.slow

PYTHON3 = "/usr/bin/python3"
START_METHODS = ("fork", "forkserver", "spawn")


def differential(name: str, script: str, args: Iterable[str], tmp_path: Path,
                 extra: Iterable[str] = (), timeout: float = 120) -> None:
    """Run `python3 SCRIPT args` natively (which must succeed and end with "done"), then in
    the sandbox with `extra` flags, each in an empty work directory; same stdout and status."""
    if not os.path.exists(PYTHON3):
        pytest.skip(f"{PYTHON3} is not installed")
    path = tmp_path / f"{name}.py"
    path.write_text(script)
    native_dir, sandbox_dir = tmp_path / "native", tmp_path / "sandbox"
    native_dir.mkdir()
    sandbox_dir.mkdir()
    argv = [PYTHON3, str(path), *args]
    native = run_native(argv, cwd=native_dir, timeout=timeout)
    assert native.returncode == 0 and native.stdout.endswith("done\n"), describe(native)
    sandboxed = run_sandbox(argv, extra=[*env_flags(), "--cwd", str(sandbox_dir), *extra],
                            timeout=timeout)
    assert_same_output(native, sandboxed)


# --------------------------------------------------------------------------- asyncio

#: A framed echo server on a unix socket with 200 concurrent clients (1 B .. 256 KiB
#: payloads), subprocess pipes, signal handlers, loop.sock_* calls and call_later order.
ASYNCIO = r'''import asyncio, os, signal, socket, sys, tempfile

SIZES = [1, 7, 100, 4096, 65536, 262144]
#: Every client's payloads are distinct slices, so a crossed stream shows as a mismatch.
PATTERN = bytes(range(256)) * (max(SIZES) // 256 + 1)

async def handle(reader, writer):
    # framed echo: 4-byte length + payload
    try:
        while True:
            head = await reader.readexactly(4)
            n = int.from_bytes(head, "big")
            data = await reader.readexactly(n)
            writer.write(head + data)
            await writer.drain()
    except asyncio.IncompleteReadError as e:
        assert e.partial == b"", e.partial
    writer.close()
    await writer.wait_closed()

async def client(path, i):
    reader, writer = await asyncio.open_unix_connection(path)
    total = 0
    for k in range(4):
        n = SIZES[(i + k) % len(SIZES)]
        start = (i * 7 + k) % 256
        payload = PATTERN[start:start + n]
        writer.write(n.to_bytes(4, "big") + payload)
        await writer.drain()
        head = await reader.readexactly(4)
        assert int.from_bytes(head, "big") == n
        back = await reader.readexactly(n)
        assert back == payload, (i, k, n)
        total += n
    writer.write_eof()
    assert await reader.read() == b""
    writer.close()
    await writer.wait_closed()
    return total

async def echo_server():
    d = tempfile.mkdtemp()
    path = os.path.join(d, "echo.sock")
    server = await asyncio.start_unix_server(handle, path, backlog=256)
    async with server:
        totals = await asyncio.gather(*(client(path, i) for i in range(200)))
    os.unlink(path); os.rmdir(d)
    print("echo clients:", len(totals), "bytes:", sum(totals))

async def subprocesses():
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import sys; d = sys.stdin.buffer.read(); sys.stdout.buffer.write(d.upper()); sys.stderr.write('err%d' % len(d)); sys.exit(7)",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    data = b"hello asyncio " * 20000
    out, err = await proc.communicate(data)
    print("subprocess:", proc.returncode, out == data.upper(), err.decode())
    procs = [await asyncio.create_subprocess_exec(sys.executable, "-c", f"print({i} * {i})",
                                                 stdout=asyncio.subprocess.PIPE) for i in range(5)]
    outs = await asyncio.gather(*(p.communicate() for p in procs))
    print("parallel subprocesses:", [int(o) for o, _ in outs], [p.returncode for p in procs])
    p = await asyncio.create_subprocess_exec("sleep", "30")
    p.terminate()
    print("terminated:", await p.wait())

async def signals():
    loop = asyncio.get_running_loop()
    got = []
    done = asyncio.Event()
    def on(sig):
        got.append(signal.Signals(sig).name)
        if len(got) == 3:
            done.set()
    for s in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP):
        loop.add_signal_handler(s, on, s)
    os.kill(os.getpid(), signal.SIGUSR1)
    await asyncio.sleep(0.01)
    os.kill(os.getpid(), signal.SIGUSR2)
    await asyncio.sleep(0.01)
    signal.raise_signal(signal.SIGHUP)
    await asyncio.wait_for(done.wait(), 30)
    print("signal handlers:", got)
    print("removed:", loop.remove_signal_handler(signal.SIGUSR1), loop.remove_signal_handler(signal.SIGUSR1))

async def sock_ops():
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    a.setblocking(False); b.setblocking(False)
    big = os.urandom(1 << 20)
    async def reader():
        chunks = []
        n = 0
        while n < len(big):
            c = await loop.sock_recv(b, 65536)
            chunks.append(c); n += len(c)
        return b"".join(chunks)
    r = asyncio.ensure_future(reader())
    await loop.sock_sendall(a, big)
    got = await r
    print("sock_sendall/sock_recv:", got == big)
    buf = bytearray(10)
    await loop.sock_sendall(b, b"0123456789")
    n = await loop.sock_recv_into(a, buf)
    print("sock_recv_into:", n, bytes(buf))
    a.close(); b.close()
    d = tempfile.mkdtemp(); path = os.path.join(d, "s")
    srv = socket.socket(socket.AF_UNIX); srv.bind(path); srv.listen(); srv.setblocking(False)
    c = socket.socket(socket.AF_UNIX); c.setblocking(False)
    conn_fut = asyncio.ensure_future(loop.sock_accept(srv))
    await loop.sock_connect(c, path)
    conn, _ = await conn_fut
    await loop.sock_sendall(c, b"ping")
    print("sock_connect/sock_accept:", await loop.sock_recv(conn, 10))
    for s in (c, conn, srv): s.close()
    os.unlink(path); os.rmdir(d)

async def timers():
    loop = asyncio.get_running_loop()
    order = []
    for delay in (0.05, 0.01, 0.03, 0.0, 0.02, 0.04):
        loop.call_later(delay, order.append, delay)
    loop.call_soon(order.append, "soon")
    t0 = loop.time()
    await asyncio.sleep(0.1)
    print("call_later order:", order, loop.time() - t0 >= 0.1)
    try:
        await asyncio.wait_for(asyncio.sleep(10), 0.05)
    except asyncio.TimeoutError:
        print("wait_for timed out")

async def main():
    await echo_server()
    await subprocesses()
    await signals()
    await sock_ops()
    await timers()

asyncio.run(main())
print("done")
'''


#: Where the sockets' directory (TMPDIR) is: /tmp in the overlay's memory upper layer, or a
#: --tmpfs (not over /tmp, which holds the script).
TMP_PLACES = {"overlay": [], "tmpfs": ["--tmpfs", "/ipc-tmp", "--env", "TMPDIR=/ipc-tmp"]}


@pytest.mark.parametrize("place", sorted(TMP_PLACES))
def test_asyncio(place: str, tmp_path: Path) -> None:
    differential("asyncio_ipc", ASYNCIO, [], tmp_path, TMP_PLACES[place])


# --------------------------------------------------------------------------- pidfds

#: pidfd_open of a zombie and of a live child, waitid(P_PIDFD), pidfd_send_signal, and
#: asyncio's PidfdChildWatcher (the default child watcher from Python 3.12), which opens the
#: pidfd after the child started and so often after it has already exited.
PIDFDS = r'''import asyncio, os, select, signal, sys, time, warnings

def readable(fd, timeout=0):
    return bool(select.select([fd], [], [], timeout)[0])

def zombie():
    pid = os.fork()
    if pid == 0:
        os._exit(3)
    # Wait for the exit without collecting it: the child is a zombie now.
    info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    print("zombie exit code:", info.si_status)
    fd = os.pidfd_open(pid)
    print("pidfd of a zombie readable:", readable(fd))
    info = os.waitid(os.P_PIDFD, fd, os.WEXITED)
    print("waitid(P_PIDFD) collects it:", info.si_status, info.si_code == os.CLD_EXITED)
    try:
        os.pidfd_open(pid)
    except ProcessLookupError:
        print("pidfd_open after reaping: ESRCH")
    os.close(fd)

def live():
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w)
        os.read(r, 1)
        time.sleep(60)
        os._exit(0)
    os.close(r)
    fd = os.pidfd_open(pid, os.O_NONBLOCK)  # PIDFD_NONBLOCK
    print("live child readable:", readable(fd))
    try:
        os.waitid(os.P_PIDFD, fd, os.WEXITED)
    except BlockingIOError:
        print("nonblocking pidfd waitid: EAGAIN")
    os.write(w, b"!")
    signal.pidfd_send_signal(fd, signal.SIGTERM)
    print("readable after pidfd_send_signal:", readable(fd, 30))
    info = os.waitid(os.P_PIDFD, fd, os.WEXITED)
    print("killed by:", signal.Signals(info.si_status).name, info.si_code == os.CLD_KILLED)
    os.close(fd); os.close(w)

async def watcher():
    # The child watcher asyncio uses by default from Python 3.12: one pidfd per child.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        w = asyncio.PidfdChildWatcher()
        w.attach_loop(asyncio.get_running_loop())
        asyncio.set_child_watcher(w)
    procs = [await asyncio.create_subprocess_exec(sys.executable, "-c", f"import sys; sys.exit({i})")
             for i in range(4)]
    print("PidfdChildWatcher exit codes:", [await p.wait() for p in procs])
    p = await asyncio.create_subprocess_exec("sleep", "60")
    p.send_signal(signal.SIGKILL)
    print("PidfdChildWatcher killed:", await p.wait())

zombie()
live()
asyncio.run(watcher())
print("done")
'''


def test_pidfds_and_asyncio_pidfd_child_watcher(tmp_path: Path) -> None:
    differential("pidfds_ipc", PIDFDS, [], tmp_path)


# --------------------------------------------------------------------------- selectors

#: epoll, poll and select selectors over pipes, socketpairs and a listening unix socket:
#: register/modify/unregister, a full writer, EOF and hang-up, timeouts, 300 fds, EPOLLET.
SELECTORS = r'''import errno, os, selectors, socket, tempfile, time

R, W = selectors.EVENT_READ, selectors.EVENT_WRITE

def names(events):
    return sorted((key.data, ("R" if ev & R else "") + ("W" if ev & W else "")) for key, ev in events)

def exercise(cls):
    sel = cls()
    label = cls.__name__
    r, w = os.pipe()
    a, b = socket.socketpair()
    d = tempfile.mkdtemp(); path = os.path.join(d, "l")
    lst = socket.socket(socket.AF_UNIX); lst.bind(path); lst.listen(8)
    sel.register(r, R, "pipe-r")
    sel.register(w, W, "pipe-w")
    sel.register(a, R | W, "sock-a")
    sel.register(b, R, "sock-b")
    sel.register(lst, R, "listen")
    print(label, "initial:", names(sel.select(0)))
    os.write(w, b"x")
    a.send(b"hello")
    print(label, "data:", names(sel.select(1)))
    assert os.read(r, 10) == b"x" and b.recv(10) == b"hello"
    sel.modify(a, R, "sock-a")
    sel.modify(w, R | W, "pipe-w2")
    print(label, "modified:", names(sel.select(0)))
    c = socket.socket(socket.AF_UNIX); c.connect(path)
    got = names(sel.select(1))
    print(label, "pending connection:", got)
    conn, _ = lst.accept()
    sel.register(conn, R, "conn")
    c.send(b"!")
    print(label, "accepted conn readable:", names(sel.select(1)))
    assert conn.recv(1) == b"!"
    print(label, "unregister returns key:", sel.unregister(w).data)
    try:
        sel.unregister(w)
    except KeyError:
        print(label, "second unregister: KeyError")
    print(label, "get_map:", sorted(k.data for k in sel.get_map().values()))
    # Fill the socket so the writer is no longer writable.
    a.setblocking(False)
    sent = 0
    try:
        while True:
            sent += a.send(b"\0" * 65536)
    except BlockingIOError:
        pass
    sel.unregister(b)
    sel.modify(a, W, "sock-a-full")
    t0 = time.monotonic()
    print(label, "full writer times out:", names(sel.select(0.05)), time.monotonic() - t0 >= 0.04)
    # Draining makes it writable again.
    b.setblocking(False)
    drained = 0
    while drained < sent:
        try:
            drained += len(b.recv(1 << 20))
        except BlockingIOError:
            break
    sel.unregister(conn); sel.unregister(r); sel.unregister(lst)
    print(label, "drained writer:", names(sel.select(1)), drained == sent)
    # Peer close: EOF is readable.
    sel.modify(a, R, "sock-a-eof")
    b.close()
    print(label, "peer closed:", names(sel.select(1)), a.recv(10))
    c.close()
    os.close(w)
    sel.register(r, R, "pipe-r-hup")
    print(label, "writer closed:", names(sel.select(1)), os.read(r, 1))
    sel.close()
    for s in (a, conn, lst): s.close()
    os.close(r)
    os.unlink(path); os.rmdir(d)
    s2 = cls()
    idle_r, idle_w = os.pipe()
    lone = socket.socket(socket.AF_UNIX)
    s2.register(idle_r, R, "idle")
    t0 = time.monotonic()
    print(label, "idle pipe times out:", s2.select(0.05), time.monotonic() - t0 >= 0.04)
    s2.register(lone, R | W, "unconnected")
    print(label, "unconnected stream socket:", names(s2.select(0)))
    s2.close()
    for fd in (idle_r, idle_w): os.close(fd)
    lone.close()

print("default is epoll:", selectors.DefaultSelector is selectors.EpollSelector)
for cls in (selectors.EpollSelector, selectors.PollSelector, selectors.SelectSelector):
    exercise(cls)
# Many fds at once.
sel = selectors.DefaultSelector()
pairs = [socket.socketpair() for _ in range(300)]
for i, (x, y) in enumerate(pairs):
    sel.register(y, R, i)
for i, (x, y) in enumerate(pairs):
    if i % 3 == 0:
        x.send(b"%d" % i)
ready = sorted(k.data for k, _ in sel.select(1))
print("300 socketpairs, ready:", len(ready), ready == list(range(0, 300, 3)))
for x, y in pairs: x.close(); y.close()
sel.close()
# select.select with a bad fd
import select
try:
    closed = os.dup(0); os.close(closed)
    select.select([closed], [], [], 0)
except OSError as e:
    print("select on bad fd:", errno.errorcode[e.errno])
ep = select.epoll()
rr, ww = os.pipe()
ep.register(rr, select.EPOLLIN | select.EPOLLET)
os.write(ww, b"ab")
print("edge triggered:", [e for _, e in ep.poll(0)], ep.poll(0))
os.write(ww, b"c")
print("edge again:", [e for _, e in ep.poll(0)])
try:
    ep.register(rr, select.EPOLLIN)
except FileExistsError:
    print("double register: EEXIST")
ep.close()
print("done")
'''


def test_selectors(tmp_path: Path) -> None:
    differential("selectors_ipc", SELECTORS, [], tmp_path)


# --------------------------------------------------------------------------- multiprocessing

#: One start method per run (argv): Pool, Queue, Pipe, Manager, the synchronisation
#: primitives (POSIX semaphores, contended across processes), Value/Array, send_handle/
#: recv_handle, ProcessPoolExecutor, Listener/Client, sentinels, terminate/kill,
#: JoinableQueue, maxtasksperchild, Pool.terminate.
MULTIPROCESSING = r'''import multiprocessing as mp, os, sys, tempfile, time
from multiprocessing import reduction
from concurrent.futures import ProcessPoolExecutor

def square(x):
    return x * x

def pid_of(_):
    return os.getpid()

def echo_pipe(conn):
    while True:
        msg = conn.recv()
        if msg is None:
            break
        conn.send(("echo", msg))
    conn.send_bytes(b"B" * 300000)
    conn.close()

def produce(q, n):
    for i in range(n):
        q.put(i)
    q.put(b"x" * 1000000)
    q.put(None)

def fill_manager(d, l, i):
    d[i] = i * 10
    l.append(i)

def count_shared(v, arr, lock, n):
    for _ in range(n):
        with lock:
            v.value += 1
    with arr.get_lock():
        for k in range(len(arr)):
            arr[k] += k

def sync_worker(i, sem, ev, cond, barrier, counter, lock, out, finished):
    assert ev.wait(30)
    with sem:
        with lock:
            counter.value += 1
            out.put(("in", counter.value <= 2))
        time.sleep(0.01)
        with lock:
            counter.value -= 1
    n = barrier.wait(30)
    out.put(("barrier", n))
    with cond:
        finished.value += 1
        cond.notify_all()

def recv_fd(conn):
    fd = reduction.recv_handle(conn)
    with os.fdopen(fd, "rb") as f:
        data = f.read()
    conn.send(("child read", len(data), data[:12]))
    r = reduction.recv_handle(conn)
    w = reduction.recv_handle(conn)
    os.write(w, os.read(r, 100).upper())
    os.close(r); os.close(w)

def sleeper(sec):
    time.sleep(sec)

def joinable_worker(jq, results):
    while True:
        item = jq.get()
        if item is None:
            jq.task_done()
            break
        results.put(item * 3)
        jq.task_done()

def client_side(address, authkey):
    from multiprocessing.connection import Client
    with Client(address, family="AF_UNIX", authkey=authkey) as c:
        c.send(["hello", c.recv()])

def exit_with(code):
    sys.exit(code)

def connections(ctx, p):
    from multiprocessing.connection import Listener, wait
    with Listener(family="AF_UNIX", authkey=b"secret") as listener:
        pr = ctx.Process(target=client_side, args=(listener.address, b"secret"))
        pr.start()
        with listener.accept() as conn:
            conn.send("from listener")
            p("Listener/Client with authkey:", conn.recv())
        pr.join()
    procs = []
    for code in (0, 3, 5):
        pr = ctx.Process(target=exit_with, args=(code,))
        pr.start()
        procs.append(pr)
    pending = {pr.sentinel: pr for pr in procs}
    while pending:
        for s in wait(list(pending), timeout=30):
            pending.pop(s).join()
    p("wait on sentinels, exit codes:", [pr.exitcode for pr in procs])
    pr = ctx.Process(target=sleeper, args=(60,))
    pr.start()
    pr.terminate()
    pr.join(30)
    p("terminate:", pr.exitcode)
    pr = ctx.Process(target=sleeper, args=(60,))
    pr.start()
    pr.kill()
    pr.join(30)
    p("kill:", pr.exitcode)
    a, b = ctx.Pipe()
    t0 = time.monotonic()
    p("Connection.poll timeout:", a.poll(0.05), time.monotonic() - t0 >= 0.04)
    b.send(1)
    p("Connection.poll ready:", a.poll(5), a.recv())
    b.close()
    try:
        a.recv()
    except EOFError:
        p("recv after peer close: EOFError")
    jq, results = ctx.JoinableQueue(), ctx.SimpleQueue()
    workers = [ctx.Process(target=joinable_worker, args=(jq, results)) for _ in range(2)]
    for w in workers: w.start()
    for i in range(50):
        jq.put(i)
    for _ in workers:
        jq.put(None)
    jq.join()
    got = sorted(results.get() for _ in range(50))
    for w in workers: w.join()
    p("JoinableQueue + SimpleQueue:", sum(got), [w.exitcode for w in workers])
    with ctx.Pool(2, maxtasksperchild=2) as pool:
        pids = pool.map(pid_of, range(8), chunksize=1)
        p("maxtasksperchild replaces workers:", len(set(pids)) >= 4, os.getpid() not in pids)
    pool = ctx.Pool(2)
    res = pool.map_async(sleeper, [60, 60])
    pool.terminate()
    pool.join()
    p("Pool.terminate:", res.ready() or "not ready")

def try_lock(lock, q):
    t0 = time.monotonic()
    q.put(("timed out", lock.acquire(timeout=0.2), time.monotonic() - t0 >= 0.15))
    q.put(("woken by release", lock.acquire(timeout=30)))
    lock.release()

def exercise(method):
    ctx = mp.get_context(method)
    p = lambda *a: print(method, *a, flush=True)
    with ctx.Pool(2) as pool:
        p("Pool.map:", sum(pool.map(square, range(300))))
        p("imap_unordered:", sorted(pool.imap_unordered(square, range(10))))
        p("apply_async:", pool.apply_async(square, (12,)).get(30))
    q = ctx.Queue()
    pr = ctx.Process(target=produce, args=(q, 500))
    pr.start()
    items = []
    while True:
        item = q.get(timeout=30)
        if item is None:
            break
        items.append(item)
    pr.join()
    assert items[:-1] == list(range(500)), "Queue reordered or lost items"
    p("Queue:", len(items), sum(items[:-1]), len(items[-1]), pr.exitcode)
    a, b = ctx.Pipe(duplex=True)
    pr = ctx.Process(target=echo_pipe, args=(b,))
    pr.start()
    got = []
    for msg in (1, "two", [3, 3], {"four": 4}):
        a.send(msg)
        got.append(a.recv())
    a.send(None)
    big = a.recv_bytes()
    pr.join()
    p("Pipe duplex:", got, len(big), pr.exitcode)
    with ctx.Manager() as m:
        d, l = m.dict(), m.list()
        procs = [ctx.Process(target=fill_manager, args=(d, l, i)) for i in range(3)]
        for x in procs: x.start()
        for x in procs: x.join()
        p("Manager:", sorted(d.items()), sorted(l))
    v = ctx.Value("i", 0)
    arr = ctx.Array("d", 5)
    lock = ctx.Lock()
    procs = [ctx.Process(target=count_shared, args=(v, arr, lock, 200)) for _ in range(3)]
    for x in procs: x.start()
    for x in procs: x.join()
    assert v.value == 600 and list(arr) == [0.0, 3.0, 6.0, 9.0, 12.0], (v.value, list(arr))
    p("Value/Array:", v.value, list(arr))
    sem, ev, cond = ctx.Semaphore(2), ctx.Event(), ctx.Condition()
    barrier, counter, out = ctx.Barrier(3), ctx.Value("i", 0, lock=False), ctx.Queue()
    finished = ctx.Value("i", 0, lock=False)
    procs = [ctx.Process(target=sync_worker, args=(i, sem, ev, cond, barrier, counter, lock, out, finished))
             for i in range(3)]
    for x in procs: x.start()
    ev.set()
    with cond:
        assert cond.wait_for(lambda: finished.value == 3, 30), finished.value
    results = [out.get(timeout=30) for _ in range(6)]
    for x in procs: x.join()
    p("sync:", sorted(r for r in results if r[0] == "in"), sorted(n for k, n in results if k == "barrier"),
      [x.exitcode for x in procs])
    rl = ctx.RLock()
    with rl:
        with rl:
            p("RLock reentrant:", True)
    p("Lock acquire timeout:", lock.acquire(timeout=0.01), lock.acquire(timeout=0.01))
    child = ctx.Process(target=try_lock, args=(lock, q))
    child.start()
    p("Lock held here, child:", q.get(timeout=30))
    lock.release()
    p("Lock released, child:", q.get(timeout=30))
    child.join()
    a, b = ctx.Pipe()
    pr = ctx.Process(target=recv_fd, args=(b,))
    pr.start()
    with tempfile.TemporaryFile() as f:
        f.write(b"passed by SCM_RIGHTS " * 100)
        f.seek(0)
        reduction.send_handle(a, f.fileno(), pr.pid)
        p("send_handle file:", a.recv())
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    os.write(w1, b"through passed pipes")
    os.close(w1)
    reduction.send_handle(a, r1, pr.pid)
    reduction.send_handle(a, w2, pr.pid)
    os.close(r1); os.close(w2)
    pr.join()
    p("send_handle pipes:", os.read(r2, 100), os.read(r2, 100), pr.exitcode)
    os.close(r2)
    with ProcessPoolExecutor(2, mp_context=ctx) as ex:
        p("ProcessPoolExecutor:", sum(ex.map(square, range(100))), ex.submit(square, 9).result())
    connections(ctx, p)
    p("active children:", mp.active_children())

if __name__ == "__main__":
    methods = sys.argv[1:] or ["fork", "forkserver", "spawn"]
    for method in methods:
        exercise(method)
    print("done")
'''


@pytest.mark.parametrize("method", START_METHODS)
def test_multiprocessing(method: str, tmp_path: Path) -> None:
    differential("multiprocessing_ipc", MULTIPROCESSING, [method], tmp_path)


# --------------------------------------------------------------------------- shared memory

#: "mmap": anonymous and /dev/shm file mappings across os.fork; a start method:
#: SharedMemory and ShareableList created here, attached by name in a child, unlinked.
SHARED_MEMORY = r'''import mmap, multiprocessing as mp, os, struct, sys
from multiprocessing import shared_memory

def child_attach(name, size, q):
    shm = shared_memory.SharedMemory(name=name)
    seen = bytes(shm.buf[:16])
    shm.buf[16:32] = b"child wrote this"
    q.put((seen, shm.size >= size))
    shm.close()

def child_list(name, q):
    sl = shared_memory.ShareableList(name=name)
    q.put(list(sl))
    sl[0] = sl[0] * 2
    sl[1] = "bye"
    sl[3] = None
    sl.shm.close()

def main(method):
    ctx = mp.get_context(method)
    q = ctx.Queue()
    shm = shared_memory.SharedMemory(create=True, size=1 << 20)
    print(method, "name under /dev/shm:", os.path.exists("/dev/shm/" + shm.name.lstrip("/")))
    shm.buf[:16] = b"parent wrote it!"
    shm.buf[-1] = 0x5a
    p = ctx.Process(target=child_attach, args=(shm.name, 1 << 20, q))
    p.start()
    print(method, "child saw:", q.get(timeout=60))
    p.join()
    print(method, "parent sees:", bytes(shm.buf[:32]), shm.buf[-1], p.exitcode)
    again = shared_memory.SharedMemory(name=shm.name)
    print(method, "second attach sees:", bytes(again.buf[16:32]))
    again.close()
    shm.close()
    shm.unlink()
    try:
        shared_memory.SharedMemory(name=shm.name)
    except FileNotFoundError:
        print(method, "after unlink: FileNotFoundError")
    sl = shared_memory.ShareableList([21, "hello", 3.5, b"bytes", True, None])
    p = ctx.Process(target=child_list, args=(sl.shm.name, q))
    p.start()
    print(method, "child list:", q.get(timeout=60))
    p.join()
    print(method, "parent list:", list(sl), p.exitcode)
    sl.shm.close()
    sl.shm.unlink()
    try:
        shared_memory.SharedMemory(create=True, size=0)
    except ValueError as e:
        print(method, "size 0:", e)

def anonymous_mmap():
    m = mmap.mmap(-1, 1 << 16)
    m[:5] = b"start"
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        ok = m[:5] == b"start"
        m[:5] = b"child"
        for i in range(0, 1 << 16, 4096):
            m[i + 8:i + 12] = struct.pack("<I", i)
        os.write(w, b"1" if ok else b"0")
        os._exit(0)
    os.close(w)
    child_ok = os.read(r, 1)
    _, status = os.waitpid(pid, 0)
    pages = all(struct.unpack("<I", m[i + 8:i + 12])[0] == i for i in range(0, 1 << 16, 4096))
    print("mmap MAP_SHARED across fork:", child_ok, m[:5], pages, os.waitstatus_to_exitcode(status))
    m.close()
    os.close(r)
    p = mmap.mmap(-1, 4096, flags=mmap.MAP_PRIVATE)
    p[:4] = b"mine"
    pid = os.fork()
    if pid == 0:
        p[:4] = b"kids"
        os._exit(0 if p[:4] == b"kids" else 1)
    _, status = os.waitpid(pid, 0)
    print("mmap MAP_PRIVATE across fork:", p[:4], os.waitstatus_to_exitcode(status))
    # A file-backed shared mapping of a /dev/shm file, seen through read() after the child writes.
    path = "/dev/shm/ipc-test-%d" % os.getpid()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.ftruncate(fd, 8192)
    fm = mmap.mmap(fd, 8192)
    pid = os.fork()
    if pid == 0:
        fm[4096:4100] = b"page"
        fm.flush()
        os._exit(0)
    os.waitpid(pid, 0)
    print("file mapping on /dev/shm:", os.pread(fd, 4, 4096), fm[4096:4100])
    fm.close(); os.close(fd); os.unlink(path)

if __name__ == "__main__":
    for part in sys.argv[1:] or ["mmap", "fork", "forkserver", "spawn"]:
        anonymous_mmap() if part == "mmap" else main(part)
    print("done")
'''


@pytest.mark.parametrize("part", ["mmap", *START_METHODS])
def test_shared_memory(part: str, tmp_path: Path) -> None:
    differential("shared_memory_ipc", SHARED_MEMORY, [part], tmp_path)


# --------------------------------------------------------------------------- send_fds

#: socket.send_fds/recv_fds with pipes, a file, a socket, an eventfd and a memfd: shared
#: state through the copies, MSG_CMSG_CLOEXEC, MSG_PEEK, MSG_CTRUNC, stream/dgram/seqpacket
#: across fork, the 253-fd limit, an in-flight socket closed with its queue; abstract names,
#: SO_PEERCRED, SCM_CREDENTIALS and sendfile into a unix socket.
SEND_FDS = r'''import array, errno, os, socket, stat, struct, tempfile

def kind(fd):
    st = os.fstat(fd)
    if stat.S_ISFIFO(st.st_mode):
        return "fifo"
    if stat.S_ISSOCK(st.st_mode):
        return "socket"
    if stat.S_ISREG(st.st_mode):
        return "file"
    return "other"

def make_fds():
    r, w = os.pipe()
    f = tempfile.TemporaryFile()
    f.write(b"file contents")
    f.flush()
    x, y = socket.socketpair()
    ev = os.eventfd(5, os.EFD_NONBLOCK)
    return r, w, f, x, y, ev

def same_stream():
    a, b = socket.socketpair()
    r, w, f, x, y, ev = make_fds()
    fds = [r, w, f.fileno(), x.fileno(), ev]
    socket.send_fds(a, [b"five fds"], fds)
    msg, got, flags, addr = socket.recv_fds(b, 100, 10)
    print("recv_fds:", msg, len(got), flags, [kind(fd) for fd in got])
    print("new numbers:", all(g not in fds for g in got), len(set(got)) == len(got))
    gr, gw, gf, gx, gev = got
    os.write(gw, b"via passed write end")
    print("pipe through passed write end:", os.read(r, 100))
    os.write(w, b"to passed read end")
    print("pipe through passed read end:", os.read(gr, 100))
    print("file shares offset:", os.lseek(gf, 0, os.SEEK_CUR), os.pread(gf, 4, 0))
    os.lseek(gf, 0, os.SEEK_SET)
    print("seek through copy moves original:", f.tell())
    sx = socket.socket(fileno=gx)
    sx.send(b"over passed socket")
    print("socket:", y.recv(100))
    os.eventfd_write(gev, 10)
    print("eventfd shared counter:", os.eventfd_read(ev))
    try:
        os.eventfd_read(gev)
    except BlockingIOError:
        print("eventfd drained: EAGAIN")
    print("received fds inheritable:", [os.get_inheritable(fd) for fd in (gr, gw, gf, gev)])
    for fd in (gr, gw, gf, gev, r, w, ev): os.close(fd)
    for s in (sx, y, a, b): s.close()
    f.close()

def cloexec_and_memfd():
    a, b = socket.socketpair()
    mfd = os.memfd_create("passed")
    os.write(mfd, b"memfd data")
    socket.send_fds(a, [b"m"], [mfd])
    fds = array.array("i")
    msg, anc, flags, _ = b.recvmsg(10, socket.CMSG_SPACE(4 * fds.itemsize), socket.MSG_CMSG_CLOEXEC)
    level, typ, data = anc[0]
    fds.frombytes(data)
    print("MSG_CMSG_CLOEXEC:", msg, level == socket.SOL_SOCKET, typ == socket.SCM_RIGHTS, len(fds),
          [os.get_inheritable(fd) for fd in fds])
    print("memfd through SCM_RIGHTS:", kind(fds[0]), os.pread(fds[0], 20, 0))
    os.close(fds[0]); os.close(mfd); a.close(); b.close()

def truncated():
    a, b = socket.socketpair()
    fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(4)]
    socket.send_fds(a, [b"four"], fds)
    msg, got, flags, _ = socket.recv_fds(b, 100, 2)
    print("too few slots:", msg, len(got), bool(flags & socket.MSG_CTRUNC))
    for fd in got + fds: os.close(fd)
    # Data without fds, then fds; the fds stay with the message they were sent with.
    a.send(b"plain")
    socket.send_fds(a, [b"withfd"], [a.fileno()])
    print("plain first:", socket.recv_fds(b, 5, 1)[:2])
    msg, got, _, _ = socket.recv_fds(b, 100, 1)
    print("then:", msg, len(got))
    for fd in got: os.close(fd)
    a.close(); b.close()

def across_fork(sock_type):
    a, b = socket.socketpair(socket.AF_UNIX, sock_type)
    pid = os.fork()
    if pid == 0:
        a.close()
        msg, got, _, _ = socket.recv_fds(b, 100, 4)
        r, w = got
        data = os.read(r, 100)
        os.write(w, data[::-1])
        os._exit(0)
    b.close()
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    socket.send_fds(a, [b"pipes"], [r1, w2])
    os.close(r1); os.close(w2)
    os.write(w1, b"reversed by the child")
    os.close(w1)
    out = os.read(r2, 100)
    _, status = os.waitpid(pid, 0)
    name = {socket.SOCK_STREAM: "stream", socket.SOCK_DGRAM: "dgram", socket.SOCK_SEQPACKET: "seqpacket"}[sock_type]
    print(f"{name} across fork:", out, os.read(r2, 100), os.waitstatus_to_exitcode(status))
    os.close(r2); a.close()

def many():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    r, w = os.pipe()
    fds = [r] * 253
    socket.send_fds(a, [b"max"], fds)
    msg, got, flags, _ = socket.recv_fds(b, 10, 300)
    print("253 copies of one fd:", len(got), flags, len({os.fstat(fd).st_ino for fd in got}))
    for fd in got: os.close(fd)
    try:
        socket.send_fds(a, [b"too many"], [r] * 254)
    except OSError as e:
        print("254 fds:", os.strerror(e.errno))
    # A socket whose only reference is in flight is closed when the message is dropped.
    x, y = socket.socketpair()
    socket.send_fds(a, [b"inflight"], [y.fileno()])
    y.close()
    b.close()
    print("in-flight peer closed with the queue:", x.recv(10))
    os.close(r); os.close(w); a.close(); x.close()

def unix_extras():
    name = "\0snakevisor-ipc-%d" % os.getpid()
    s = socket.socket(socket.AF_UNIX); s.bind(name); s.listen()
    c = socket.socket(socket.AF_UNIX); c.connect(name)
    a, _ = s.accept()
    c.send(b"abstract")
    print("abstract name:", a.recv(10), s.getsockname() == name.encode())
    try:
        socket.socket(socket.AF_UNIX).bind(name)
    except OSError as e:
        print("abstract name taken:", errno.errorcode[e.errno])
    pid, uid, gid = struct.unpack("3i", a.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    print("SO_PEERCRED is us:", (pid, uid, gid) == (os.getpid(), os.getuid(), os.getgid()))
    a.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    c.send(b"cred")
    msg, anc, _, _ = a.recvmsg(10, socket.CMSG_SPACE(12))
    print("SCM_CREDENTIALS:", msg, [(lvl == socket.SOL_SOCKET, typ == socket.SCM_CREDENTIALS,
                                     struct.unpack("3i", data) == (os.getpid(), os.getuid(), os.getgid()))
                                    for lvl, typ, data in anc])
    a.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 0)
    r, w = os.pipe()
    socket.send_fds(c, [b"peek"], [r])
    msg, anc, _, _ = a.recvmsg(10, socket.CMSG_SPACE(4), socket.MSG_PEEK)
    peeked = list(array.array("i", anc[0][2]))
    msg2, got, _, _ = socket.recv_fds(a, 10, 1)
    print("MSG_PEEK with an fd, then the read:", msg, len(peeked), msg2, len(got),
          os.fstat(peeked[0]).st_ino == os.fstat(got[0]).st_ino == os.fstat(r).st_ino)
    for fd in (*peeked, *got, r, w): os.close(fd)
    with tempfile.TemporaryFile() as f:
        f.write(bytes(range(256)) * 4096)
        f.flush()
        f.seek(0)
        import threading
        got = []
        def drain():
            data = b""
            while len(data) < 1 << 20:
                data += a.recv(1 << 20)
            got.append(data)
        t = threading.Thread(target=drain)
        t.start()
        print("socket.sendfile over unix:", c.sendfile(f))
        t.join()
        print("received the file:", got[0] == bytes(range(256)) * 4096)
    for x in (a, c, s): x.close()

same_stream()
cloexec_and_memfd()
unix_extras()
truncated()
for t in (socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_SEQPACKET):
    across_fork(t)
many()
print("done")
'''


def test_send_fds(tmp_path: Path) -> None:
    differential("send_fds_ipc", SEND_FDS, [], tmp_path)
