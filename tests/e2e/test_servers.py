"""Real servers on unix sockets inside the sandbox, driven by their own clients inside it.

Why: redis, memcached and PostgreSQL are what an event-driven server and a multi-process
database look like to a kernel: epoll loops over many unix-socket connections, fork for
background saves, worker processes sharing memory (System V and POSIX shared memory,
semaphores in shared pages), signals between them, fsync'd files.  Each script runs the
server and its clients in ONE sandbox and prints only what does not depend on timing; the
same script run natively must print the same, so a difference is the sandbox's.

The servers come from Debian packages (scripts/install-deps.sh installs them).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from harness import assert_same_output, env_flags, run_native, run_sandbox

pytestmark = pytest.mark.slow

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SETPRIV = "/usr/bin/setpriv"

#: Waits for a unix socket to appear (servers create it once they are ready), at most ~10 s.
WAIT_FOR_SOCKET = """
wait_sock() { i=0; while [ ! -S "$1" ]; do i=$((i+1)); [ $i -gt 100 ] && { echo "no $1"; exit 1; }; sleep 0.1; done; }
"""

REDIS_SCRIPT = WAIT_FOR_SOCKET + r"""
set -e
D=$1; S=$D/redis.sock
redis-server --port 0 --unixsocket $S --unixsocketperm 700 --dir $D --dbfilename dump.rdb \
    --appendonly no --save '' --daemonize no >$D/redis.log 2>&1 &
wait_sock $S
R="redis-cli -s $S"
$R ping
$R set greeting hello
$R get greeting
$R incrby counter 41 >/dev/null; $R incr counter
$R rpush list a b c d >/dev/null; $R lrange list 1 2
$R hset h f1 v1 f2 v2; $R hgetall h
$R setex shortlived 100 x; $R ttl shortlived | sed 's/^[0-9]*$/ttl-positive/'
# many commands down one connection at once
i=0; while [ $i -lt 500 ]; do echo "SET k$i v$i"; i=$((i+1)); done | $R >/dev/null
$R dbsize
$R get k499
# BGSAVE forks the server: the child writes the snapshot while the parent keeps serving
$R bgsave >/dev/null
i=0; while [ ! -s $D/dump.rdb ] || [ "$($R info persistence | grep -c 'rdb_bgsave_in_progress:0')" = 0 ]; do
    i=$((i+1)); [ $i -gt 200 ] && { echo "bgsave never finished"; exit 1; }; sleep 0.05; done
$R info persistence | grep rdb_last_bgsave_status | tr -d "\r"
# pub/sub between two clients
$R subscribe news >$D/sub.out &
SUB=$!
i=0; until [ "$($R pubsub numsub news | tail -1)" = 1 ]; do i=$((i+1)); [ $i -gt 100 ] && exit 1; sleep 0.05; done
$R publish news extra
i=0; until grep -q extra $D/sub.out; do i=$((i+1)); [ $i -gt 100 ] && exit 1; sleep 0.05; done
kill $SUB; wait $SUB 2>/dev/null || true
tail -1 $D/sub.out
# the benchmark: 10 connections at once through the server's epoll loop
redis-benchmark -s $S -n 2000 -c 10 -t ping,set,get,lpush,lpop,incr -q --csv 2>/dev/null \
    | awk -F, 'NR > 1 { gsub(/"/, ""); print $1, ($2 > 0 ? "ok" : "zero") }'
$R shutdown save || true
wait
# a fresh server loads the snapshot back
redis-server --port 0 --unixsocket $S --dir $D --dbfilename dump.rdb --appendonly no \
    --save '' >>$D/redis.log 2>&1 &
wait_sock $S
$R get k250
$R lrange list 0 -1 | tr '\n' ' '; echo
$R shutdown nosave || true
wait
echo done
"""

MEMCACHED_SCRIPT = WAIT_FOR_SOCKET + r"""
set -e
D=$1; S=$D/mc.sock
memcached -u root -s $S -a 0700 -m 16 -c 64 >$D/mc.log 2>&1 &
MC=$!
wait_sock $S
memcping --servers=$S && echo ping ok
printf 'some bytes\n' >$D/blob
memccp --servers=$S $D/blob
memccat --servers=$S blob
memcstat --servers=$S | grep -E '^\s+(curr_items|cmd_set):' | tr -s ' \t' ' '
memcslap --servers=$S --concurrency=8 --execute-number=100 >/dev/null 2>&1 && echo slap ok
/usr/bin/python3 - $S <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rwb")
def cmd(line, data=None):
    f.write(line.encode() + b"\r\n" + (data + b"\r\n" if data is not None else b""))
    f.flush()
    out = [f.readline().strip()]
    while out[-1].startswith(b"VALUE"):
        out += [f.readline().strip(), f.readline().strip()]
    print(line.split()[0], b" ".join(out).decode())
cmd("set a 5 0 3", b"one")
cmd("get a")
cmd("add a 0 0 1", b"x")
cmd("append a 0 0 4", b"more")
cmd("get a")
cmd("set n 0 0 2", b"40")
cmd("incr n 2")
cmd("decr n 50")
cmd("delete a")
cmd("get a")
big = bytes(range(256)) * 2048  # 512 KiB: many reads and writes on the socket
cmd(f"set big 0 0 {len(big)}", big)
f.write(b"get big\r\n"); f.flush()
header = f.readline()
body = f.read(int(header.split()[3]) + 2)
print("big", b" ".join(header.split()[:3]).decode(), body[:-2] == big, f.readline().strip().decode())
PY
kill $MC; wait $MC || true
echo done
"""

POSTGRES_SCRIPT = r"""
set -e
D=$1; B=%(bin)s
$B/initdb -D $D/data -A trust -U postgres --no-sync >$D/initdb.log 2>&1 && echo initdb ok
start() { $B/pg_ctl -D $D/data -l $D/pg.log -w -t 60 -o "-c listen_addresses='' -k $D -c fsync=off $1" start >/dev/null && echo started; }
start
P="$B/psql -h $D -U postgres -d postgres -X -A -t -q -v ON_ERROR_STOP=1"
$P -c 'select 1'
$P -c 'create table t (id int primary key, v text)'
$P -c "insert into t select g, md5(g::text) from generate_series(1, 5000) g"
$P -c 'select count(*), min(id), max(id) from t'
$P -c "select v from t where id = 4242"
# parallel workers: dynamic shared memory segments and latches between processes
parallel() { $P -c "set max_parallel_workers_per_gather = 2; set parallel_setup_cost = 0;
    set parallel_tuple_cost = 0; set min_parallel_table_scan_size = 0; select sum(id) from t"; }
parallel
$B/pgbench -h $D -U postgres -i -s 1 -q postgres >$D/pgbench-init.log 2>&1 && echo pgbench init ok
$B/pgbench -h $D -U postgres -c 4 -j 2 -t 200 postgres 2>&1 \
    | grep -E '^(number of transactions actually processed|number of failed transactions)'
$P -c 'select count(*) from pgbench_accounts'
$B/pg_ctl -D $D/data -w -m fast stop >/dev/null && echo stopped
# again with every shared segment in System V shared memory
start "-c shared_memory_type=sysv -c dynamic_shared_memory_type=sysv"
$P -c 'select count(*) from t'
parallel
$P -c "show shared_memory_type"
$B/pg_ctl -D $D/data -w -m fast stop >/dev/null && echo stopped
# (a backend whose client has just gone may still be exiting when a fast stop comes: it is
# told to terminate and cannot say goodbye -- a race natively too, not a failure)
grep -E 'PANIC|FATAL|could not' $D/pg.log \
    | grep -vE 'due to administrator command|could not send data to client: Broken pipe' \
    || echo clean log
echo done
"""


def need(*tools: str) -> None:
    for tool in tools:
        if not (os.path.exists(tool) if tool.startswith("/") else shutil.which(tool)):
            pytest.skip(f"{tool} is not installed (scripts/install-deps.sh installs it)")


@pytest.fixture
def shared_dir():
    """A directory every user can enter (pytest's tmp_path is root's alone): the script and
    the native run's data live here so a server can run as an unprivileged user."""
    path = Path(tempfile.mkdtemp(prefix="snakevisor-servers-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def compare(work: Path, script: str, sandbox_dir: str, *, user: str | None = None,
            timeout: float = 150) -> str:
    """Run SCRIPT DIR natively (DIR under WORK) and in the sandbox (DIR = sandbox_dir, made
    in the overlay root), as USER when given; outputs must be equal."""
    path = work / "script.sh"
    path.write_text(script)
    path.chmod(0o755)
    native_dir = work / "native"
    native_dir.mkdir()
    drop = [SETPRIV, f"--reuid={user}", f"--regid={user}", "--init-groups"] if user else []
    if user:
        shutil.chown(native_dir, user, user)
    native = run_native([*drop, "/bin/sh", path, native_dir], timeout=timeout)
    setup = f"mkdir -p {sandbox_dir} && chown {user or 'root'}: {sandbox_dir} && "
    sandbox = run_sandbox(["/bin/sh", "-c", setup + " ".join([*drop, "/bin/sh", "/s/script.sh",
                                                             sandbox_dir])],
                          extra=[*env_flags(), "--volume", f"{work}:/s:ro"], timeout=timeout)
    assert_same_output(native, sandbox)
    assert sandbox.stdout.rstrip().endswith("done"), sandbox.stdout
    return sandbox.stdout


def test_redis_on_a_unix_socket(shared_dir: Path) -> None:
    need("redis-server", "redis-cli", "redis-benchmark")
    out = compare(shared_dir, REDIS_SCRIPT, "/tmp/redis")
    for line in ("PONG", "hello", "42", "505", "v499", "rdb_last_bgsave_status:ok", "extra",
                 "SET ok", "GET ok", "v250"):
        assert line in out.splitlines(), line
    assert "zero" not in out


def test_memcached_on_a_unix_socket(shared_dir: Path) -> None:
    need("memcached", "memcping", "memccp", "memccat", "memcstat", "memcslap")
    out = compare(shared_dir, MEMCACHED_SCRIPT, "/tmp/mc")
    assert "ping ok" in out and "slap ok" in out and "some bytes" in out
    lines = out.splitlines()
    for line in ("get VALUE a 5 3 one END", "add NOT_STORED", "get VALUE a 5 7 onemore END",
                 "incr 42", "decr 0", "delete DELETED", "get END"):
        assert line in lines, line
    assert "big VALUE big 0 True END" in lines


def test_postgres_initdb_psql_pgbench(shared_dir: Path) -> None:
    need(str(PG_BIN / "initdb"), str(PG_BIN / "pgbench"), SETPRIV)
    out = compare(shared_dir, POSTGRES_SCRIPT % {"bin": PG_BIN}, "/tmp/pg", user="postgres",
                  timeout=400)
    lines = out.splitlines()
    assert lines[:3] == ["initdb ok", "started", "1"], out
    assert "5000|1|5000" in lines and "12502500" in lines
    assert "number of transactions actually processed: 800/800" in lines
    assert "number of failed transactions: 0 (0.000%)" in lines
    assert "100000" in lines and "clean log" in lines
    assert lines.count("12502500") == 2 and "sysv" in lines
