"""9P2000.L wire format: every message round-trips, known encodings match byte for byte, and
malformed input of every kind raises ProtocolError (never IndexError, struct.error, ...)."""
from __future__ import annotations

import array
import errno
import os
import random
import socket
import struct
import threading

import pytest

from snakevisor.kernel.errors import SyscallError
from snakevisor.p9 import messages as m
from snakevisor.p9.client import Client
from snakevisor.p9.messages import Dirent, ProtocolError, Qid

#: Linux include/net/9p/9p.h numbers of every message the gofer issue lists
TYPE_NUMBERS = {
    "Rlerror": 7, "Tstatfs": 8, "Tlopen": 12, "Tlcreate": 14, "Tsymlink": 16, "Tmknod": 18,
    "Treadlink": 22, "Tgetattr": 24, "Tsetattr": 26, "Txattrwalk": 30, "Txattrcreate": 32,
    "Treaddir": 40, "Tfsync": 50, "Tlock": 52, "Tgetlock": 54, "Tlink": 70, "Tmkdir": 72,
    "Trenameat": 74, "Tunlinkat": 76, "Tversion": 100, "Tattach": 104, "Tflush": 108,
    "Twalk": 110, "Tread": 116, "Twrite": 118, "Tclunk": 120,
}
#: the VERSION_FDS dialect's requests, numbered above 9P2000.L's
EXTENSIONS = {"Twalkstat": 128, "Trenameat2": 130, "Ttmpfile": 132, "Topenfd": 134}


def _sample(codec_ann: object, seed: int) -> object:
    """A distinctive value for one field type (different per field so swaps are caught)."""
    kind = codec_ann.__metadata__[0]
    if isinstance(kind, m._Fixed):
        if kind.nvalues == 3:
            return Qid(0x80 | (seed & 0x7F), 0xA0B0C0D0 + seed, (1 << 63) + seed)
        bits = struct.calcsize("<" + kind.fmt) * 8
        return ((0xA5A5A5A5A5A5A5A5 + seed * 0x0101010101010101) % (1 << bits)) or 1
    return {"str": b"name\xff\x00" + bytes([seed]),
            "data": bytes(range(seed, seed + 40)),
            "qids": (Qid(0, seed, 1), Qid(2, 3, (1 << 64) - 1)),
            "names": (b"etc", b"", bytes([seed]) * 3)}[kind.kind]


def _instance(cls: type[m.Message]) -> m.Message:
    return cls(**{f: _sample(cls.__annotations__[f], i) for i, f in enumerate(cls.FIELDS)})


def test_every_listed_message_exists_with_linux_numbers() -> None:
    for name, code in {**TYPE_NUMBERS, **EXTENSIONS}.items():
        cls = getattr(m, name)
        assert cls.TYPE == code and m.MESSAGES[code] is cls
        if name.startswith("T"):
            reply = getattr(m, "R" + name[1:])
            assert reply.TYPE == code + 1 and m.reply_type(cls) is reply
    assert len(m.MESSAGES) == 2 * (len(TYPE_NUMBERS) - 1) + 1 + 2 * len(EXTENSIONS)


def test_messages_are_made_from_their_fields_in_order_or_by_name() -> None:
    assert m.Twalk(1, 2, (b"a",)) == m.Twalk(fid=1, newfid=2, wnames=(b"a",))
    assert m.Twalk(1, 2, (b"a",)) != m.Twalk(1, 3, (b"a",)) and m.Rclunk() == m.Rclunk()
    assert repr(m.Tclunk(5)) == "Tclunk(fid=5)"
    for bad in ((1,), (1, 2, (), 4)):
        with pytest.raises(TypeError):
            m.Twalk(*bad)
    with pytest.raises(TypeError):
        m.Tclunk(nofid=1)


def test_walkstat_attribute_records() -> None:
    a = m.Attr(Qid(m.QTDIR, 7, 1 << 40), 0o40755, 1000, 100, 3, 0, 4096, 4096, 8,
               1, 2, (1 << 64) - 1, 999_999_999, 5, 6)
    b = a._replace(qid=Qid(m.QTFILE, 0, 9), mode=0o100644)
    data = m.encode_attrs([a, b])
    assert len(data) == 2 * 113 and m.decode_attrs(data) == [a, b]
    assert m.decode_attrs(b"") == []
    with pytest.raises(ProtocolError):
        m.decode_attrs(data[:-1])
    with pytest.raises(ProtocolError):
        m.encode_attrs([a._replace(mode=1 << 32)])


@pytest.mark.parametrize("cls", sorted(m.MESSAGES.values(), key=lambda c: c.TYPE),
                         ids=lambda c: c.__name__)
def test_round_trip(cls: type[m.Message]) -> None:
    msg = _instance(cls)
    packet = m.encode(msg, 0x1234)
    assert int.from_bytes(packet[:4], "little") == len(packet)
    assert packet[4] == cls.TYPE and packet[5:7] == b"\x34\x12"
    assert m.decode(packet) == (0x1234, msg)
    # every strict prefix is malformed, never another exception
    for cut in range(len(packet)):
        with pytest.raises(ProtocolError):
            m.decode(packet[:cut])


def test_tversion_exact_bytes() -> None:
    packet = m.encode(m.Tversion(8192, b"9P2000.L"), m.NOTAG)
    assert packet == bytes.fromhex("15000000" "64" "ffff" "00200000" "0800") + b"9P2000.L"


def test_exact_bytes_of_other_messages() -> None:
    assert m.encode(m.Rlerror(2), 1) == bytes.fromhex("0b000000 07 0100 02000000")
    assert m.encode(m.Tclunk(5), 3) == bytes.fromhex("0b000000 78 0300 05000000")
    assert m.encode(m.Twalk(1, 2, (b"foo",)), 1) == bytes.fromhex(
        "16000000 6e 0100 01000000 02000000 0100 0300") + b"foo"
    assert m.encode(m.Rwalk((Qid(0x80, 0, 0x2C1FAC),)), 1) == bytes.fromhex(
        "16000000 6f 0100 0100 80 00000000 ac1f2c0000000000")
    assert m.encode(m.Tgetattr(1, m.GETATTR_BASIC), 1) == bytes.fromhex(
        "13000000 18 0100 01000000 ff07000000000000")
    assert m.encode(m.Tattach(0, m.NOFID, b"root", b"/tmp/9", m.NONUNAME), 1) == (
        bytes.fromhex("21000000 68 0100 00000000 ffffffff 0400") + b"root"
        + bytes.fromhex("0600") + b"/tmp/9" + bytes.fromhex("ffffffff"))
    # sizes of the fixed-layout replies: qid 13, Rgetattr 153-byte body, Rstatfs 60
    assert len(m.encode(_instance(m.Rgetattr), 0)) == 7 + 8 + 13 + 3 * 4 + 15 * 8
    assert len(m.encode(_instance(m.Rstatfs), 0)) == 7 + 4 + 4 + 6 * 8 + 4
    assert len(m.encode(_instance(m.Tsetattr), 0)) == 7 + 5 * 4 + 5 * 8


def test_readdir_entries_match_diods_sample_session() -> None:
    """The first two entries of the Rreaddir dump in diod's protocol.md ("." and "..")."""
    wire = bytes.fromhex(
        "80000000 00ac1f2c 00000000 00010000 00000000 00040100 2e800000 0000ffff"
        "25000000 00002658 ea000000 00000402 002e2e")
    entries = [Dirent(Qid(0x80, 0, 0x2C1FAC), 1, 4, b"."),
               Dirent(Qid(0x80, 0, 0x25FFFF), 0xEA5826, 4, b"..")]
    assert m.decode_dirents(wire) == entries
    assert b"".join(m.encode_dirent(d) for d in entries) == wire
    assert m.dirent_size(b"..") == len(m.encode_dirent(entries[1]))
    for cut in range(1, len(wire)):
        if cut != 25:  # the boundary between the two entries
            with pytest.raises(ProtocolError):
                m.decode_dirents(wire[:cut])


def _frame(code: int, body: bytes, tag: int = 1) -> bytes:
    return m.HEADER.pack(7 + len(body), code, tag) + body


@pytest.mark.parametrize("packet, why", [
    (b"", "empty"),
    (b"\x07\x00\x00", "shorter than a header"),
    (_frame(m.Tclunk.TYPE, b"\x01\x00\x00"), "truncated fixed field"),
    (_frame(m.Tclunk.TYPE, b"\x01\x00\x00\x00\x00"), "trailing byte"),
    (_frame(m.Tattach.TYPE, struct.pack("<IIH", 0, 0, 10) + b"abc"), "truncated string"),
    (_frame(m.Twalk.TYPE, struct.pack("<IIH", 0, 1, 17) + b"\x00\x00" * 17), "17 walk names"),
    (_frame(m.Twalk.TYPE, struct.pack("<IIH", 0, 1, 0xFFFF)), "65535 walk names"),
    (_frame(m.Twalk.TYPE, struct.pack("<IIH", 0, 1, 2) + b"\x01\x00a"), "missing 2nd name"),
    (_frame(m.Rwalk.TYPE, struct.pack("<H", 3) + bytes(26)), "3 qids, 2 present"),
    (_frame(m.Twrite.TYPE, struct.pack("<IQI", 0, 0, 0xFFFFFFFF) + b"x"), "huge data count"),
    (_frame(m.Rread.TYPE, struct.pack("<I", 5) + b"abcdef"), "data count too small"),
    (_frame(m.Rreaddir.TYPE, struct.pack("<I", 0x7FFFFFFF)), "readdir count overruns"),
])
def test_malformed(packet: bytes, why: str) -> None:
    with pytest.raises(ProtocolError):
        m.decode(packet)


def test_size_field_must_match_and_respect_msize() -> None:
    good = m.encode(m.Tread(1, 0, 10), 9)
    for size in (len(good) - 1, len(good) + 1, 0, 0xFFFFFFFF):
        with pytest.raises(ProtocolError) as info:
            m.decode(struct.pack("<I", size) + good[4:])
        assert info.value.tag == 9  # the tag is still known, so Rlerror can answer it
    big = m.encode(m.Twrite(1, 0, bytes(9000)), 4)
    assert m.decode(big)[1].data == bytes(9000)
    with pytest.raises(ProtocolError) as info:
        m.decode(big, msize=8192)
    assert info.value.tag == 4


def test_unknown_type_is_a_protocol_error_with_its_tag() -> None:
    for code in (0, 6, 106, 112, 124, 255):
        with pytest.raises(m.UnknownMessage) as info:
            m.decode(_frame(code, b"", tag=77))
        assert isinstance(info.value, ProtocolError) and info.value.tag == 77


def test_encoding_refuses_what_does_not_fit() -> None:
    for msg in (m.Twalk(0, 1, (b"a",) * 17), m.Tclunk(-1), m.Tclunk(1 << 32),
                m.Tattach(0, 0, b"x" * 65536, b"", 0), m.Tlock(0, 256, 0, 0, 0, 0, b""),
                m.Rwalk((Qid(0, 0, 0),) * 17), m.Tclunk(None)):
        with pytest.raises(ProtocolError):
            m.encode(msg, 1)
    with pytest.raises(ProtocolError):
        m.encode(m.Tclunk(1), 0x10000)
    with pytest.raises(ProtocolError):
        m.encode_dirent(Dirent(Qid(0, 0, -1), 0, 0, b"x"))


def test_random_corruption_only_ever_raises_protocol_error() -> None:
    rng = random.Random(9)
    packets = [m.encode(_instance(cls), 3) for cls in m.MESSAGES.values()]
    for _ in range(20000):
        p = bytearray(rng.choice(packets))
        for _ in range(rng.randint(1, 4)):
            p[rng.randrange(len(p))] = rng.randrange(256)
        if rng.random() < 0.3:
            p[0:4] = len(p).to_bytes(4, "little")  # keep framing, corrupt the body
        try:
            tag, msg = m.decode(bytes(p))
        except ProtocolError:
            continue
        assert m.decode(m.encode(msg, tag)) == (tag, msg)


def test_request_and_reply_helpers() -> None:
    assert m.is_request(m.Tgetattr(1, 0)) and not m.is_request(m.Rlerror.TYPE)
    assert m.peek_header(m.encode(m.Tflush(3), 5)) == (9, m.Tflush.TYPE, 5)
    with pytest.raises(ProtocolError):
        m.peek_header(b"\x01")


# --- the client against a scripted server ---------------------------------------------------

class Scripted:
    """A peer answering each request with the next scripted (reply builder, fds) in a thread.

    A builder takes (tag, request) and returns the raw reply packet (or None to hang up).
    """

    def __init__(self, script: list, kind: int = socket.SOCK_SEQPACKET) -> None:
        self.ours, self.theirs = socket.socketpair(socket.AF_UNIX, kind)
        self.requests: list[m.Message] = []
        self.packets: list[int] = []  #: for each request, how many had arrived by its packet
        self.script = list(script)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        stream = self.theirs.type == socket.SOCK_STREAM
        while self.script:
            data = self.theirs.recv(1 << 20)
            if not data:
                return
            replies, passed = [], []
            parts = [data] if stream else m.split_packet(data)  # our dialect: several
            self.packets += [len(self.requests) + len(parts)] * len(parts)
            for part in parts:
                tag, msg = m.decode(part)
                self.requests.append(msg)
                build, fds = self.script.pop(0)
                reply = build(tag, msg)
                if reply is None:
                    self.theirs.close()
                    return
                replies.append(reply)
                passed += fds
            reply = b"".join(replies)
            if stream:  # dribble the reply to test reassembly
                for i in range(len(reply)):
                    self.theirs.send(reply[i:i + 1])
            elif passed:
                self.theirs.sendmsg([reply], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                               array.array("i", passed))])
            else:
                self.theirs.send(reply)

    def close(self) -> None:
        self.ours.close()
        self.thread.join(5)
        self.theirs.close()


def _reply(msg: m.Message):
    return lambda tag, req: m.encode(msg, tag)


VERSION_OK = (_reply(m.Rversion(8192, m.VERSION_FDS)), [])
QID = Qid(m.QTFILE, 0, 7)


def test_client_negotiates_and_falls_back_to_plain_9p2000l() -> None:
    s = Scripted([(_reply(m.Rversion(8192, m.UNKNOWN_VERSION)), []),
                  (_reply(m.Rversion(4096, m.VERSION)), [])])
    c = Client(s.ours, msize=8192)
    assert (c.version, c.fds, c.msize, c.iounit) == (m.VERSION, False, 4096, 4096 - m.IOHDRSZ)
    assert [r.version for r in s.requests] == [m.VERSION_FDS, m.VERSION]
    assert all(r.msize == 8192 for r in s.requests)
    s.close()


def test_client_rlerror_fids_and_donated_fds() -> None:
    r, w = os.pipe()
    s = Scripted([VERSION_OK,
                  (_reply(m.Rlerror(errno.ENOENT)), []),        # attach fails
                  (_reply(m.Rattach(QID)), []),
                  (_reply(m.Rgetattr(0, QID, *([0] * 18))), [w]),  # a stray fd
                  (_reply(m.Rlopen(QID, 0)), [w]),
                  (_reply(m.Rclunk()), []),
                  (_reply(m.Rwalk((QID,))), [])])
    c = Client(s.ours)
    with pytest.raises(SyscallError) as info:
        c.attach(b"/x")
    assert info.value.errno == errno.ENOENT
    fid, _ = c.attach(b"/")
    assert fid == 0  # the failed attach gave its fid number back
    c.getattr(fid)  # its stray fd was closed by the client
    qid, iounit, fd = c.lopen(fid, os.O_RDONLY)
    assert fd is not None and iounit == c.iounit and qid == QID
    os.close(w)
    os.write(fd, b"x")
    os.close(fd)
    c.clunk(fid)
    newfid, _ = c.walk(fid, [b"a"])
    assert newfid == 0  # reused after the clunk
    assert os.read(r, 10) == b"x" and os.read(r, 10) == b""  # no copy of w left open
    os.close(r)
    s.close()


@pytest.mark.parametrize("bad", [
    lambda tag, req: m.encode(m.Rclunk(), tag ^ 1),            # wrong tag
    lambda tag, req: m.encode(m.Rclunk(), tag),                # not the Rgetattr asked for
    lambda tag, req: m.encode(m.Rread(b"abc"), tag)[:-1],     # malformed
    lambda tag, req: None,                                    # hang up
])
def test_client_breaks_on_a_bad_reply(bad) -> None:
    s = Scripted([VERSION_OK, (bad, [])])
    c = Client(s.ours)
    with pytest.raises(SyscallError) as info:
        c.getattr(0)
    assert info.value.errno == errno.EIO and c.broken
    with pytest.raises(SyscallError):
        c.getattr(0)  # stays broken, sends nothing
    assert len(s.requests) == 2
    s.close()


def test_client_pipelines_requests_and_keeps_replies_in_order() -> None:
    """clunk_many sends every Tclunk in one packet (our dialect); an error answers its own."""
    s = Scripted([VERSION_OK, (_reply(m.Rclunk()), []), (_reply(m.Rlerror(errno.EBADF)), []),
                  (_reply(m.Rclunk()), [])])
    c = Client(s.ours)
    c.clunk_many([4, 5, 6])
    assert [type(r).__name__ for r in s.requests[1:]] == ["Tclunk"] * 3
    assert [r.fid for r in s.requests[1:]] == [4, 5, 6]
    assert sorted(c._free_fids) == [4, 5, 6]  # gone on both sides, whatever was answered
    assert s.packets == [1, 4, 4, 4]  # Tversion, then the three in one packet
    s.close()


def test_client_openfd_keeps_the_donated_fd() -> None:
    r, w = os.pipe()
    s = Scripted([VERSION_OK, (_reply(m.Ropenfd(QID, 0)), [w]), (_reply(m.Ropenfd(QID, 0)), [])])
    c = Client(s.ours)
    fd = c.openfd(3, os.O_RDONLY)
    assert (s.requests[1].fid, s.requests[1].flags) == (3, os.O_RDONLY)
    os.close(w)
    os.write(fd, b"x")
    os.close(fd)
    assert os.read(r, 1) == b"x"
    os.close(r)
    with pytest.raises(SyscallError):  # a reply that should carry an fd but does not
        c.openfd(3, os.O_RDONLY)
    assert c.broken
    s.close()


def test_client_walkstat_prefix_and_fid() -> None:
    a = m.Attr(QID, 0o100644, 0, 0, 1, 0, 5, 4096, 8, 0, 0, 0, 0, 0, 0)
    s = Scripted([VERSION_OK, (_reply(m.Rwalkstat(m.encode_attrs([a, a, a]))), []),
                  (_reply(m.Rwalkstat(m.encode_attrs([a, a]))), []),
                  (_reply(m.Rwalkstat(m.encode_attrs([a] * 5))), [])])
    c = Client(s.ours)
    fid, attrs = c.walkstat(0, (b"a", b"b"))
    assert fid is not None and attrs == [a, a, a] and s.requests[1].newfid == fid
    none, attrs = c.walkstat(0, (b"a", b"b"), create=False)
    assert none is None and attrs == [a, a] and s.requests[2].newfid == m.NOFID
    with pytest.raises(SyscallError):  # more answers than names walked: a broken server
        c.walkstat(0, (b"a",))
    assert c.broken
    s.close()


def test_client_over_a_stream_socket() -> None:
    s = Scripted([(_reply(m.Rversion(8192, m.VERSION)), []),
                  (_reply(m.Rread(b"hello")), [])], kind=socket.SOCK_STREAM)
    c = Client(s.ours)
    assert s.requests[0].version == m.VERSION  # no fd extension offered on a stream
    assert c.read(1, 0, 100) == b"hello"
    s.close()
