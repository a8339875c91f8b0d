"""9P2000.L messages: the wire format shared by the gofer (server) and the sentry (client).

Every message is ``size[4] type[1] tag[2] body``, little-endian; ``size`` counts the whole
message including itself.  Strings are ``len[2] bytes`` (kept as ``bytes``: Linux file names
are not text), a qid is ``type[1] version[4] path[8]``.  The type numbers and field layouts
are Linux's (include/net/9p/9p.h, net/9p/client.c) and diod's protocol description; each
class below lists its fields in wire order.  Malformed input of any kind raises
:class:`ProtocolError` and nothing else.

Transport and the fd-donation extension
---------------------------------------
9P has no way to pass file descriptors; snakevisor adds one, negotiated and narrow:

* The connection is an ``AF_UNIX`` ``SOCK_SEQPACKET`` socketpair and every packet holds
  whole 9P messages (one, or several back to back in the dialect below; there is no
  reassembly, so framing can never be lost).  A stream socket (``SOCK_STREAM``, e.g. to diod) carries plain
  9P2000.L with no fds.
* The client asks for the extension in Tversion with the version string
  ``9P2000.L.fds`` (:data:`VERSION_FDS`).  A server that grants it echoes that string; a
  plain 9P2000.L server answers ``9P2000.L`` or ``unknown`` and no fd is ever sent.
* When granted, the server attaches exactly one host fd (``SCM_RIGHTS`` ancillary data on the
  same packet) to a successful **Rlopen**, **Rlcreate**, **Ropenfd** or **Rtmpfile** for a
  *regular file*: the fd was
  opened by the server with the Tlopen/Tlcreate flags and shares that open file description
  with the fid (Tread/Twrite on the fid keep working).  The sentry does its data operations
  and mmap on the donated fd itself.  "Walk + open for mmap/exec" is simply Twalk to a new
  fid, Tlopen O_RDONLY, keep the donated fd, Tclunk the fid: the fd outlives the fid.
* Directories, symlinks, O_PATH handles and special files are never donated: a directory fd
  would let its holder ``openat(fd, "..")`` out of the container root.
* Any other R-message never carries fds; a client closes any fd that arrives unexpectedly.
* The same dialect adds requests (type numbers above 9P2000.L's, as gVisor's p9 did):
  **Twalkstat** walks like Twalk (newfid may be NOFID: nothing is created) and answers the
  attributes of every node on the walk in one reply, the starting fid's first: a lookup is
  one round trip, and a cached path is revalidated against the host in one.
  **Trenameat2** is Trenameat with renameat2(2) flags (RENAME_NOREPLACE, RENAME_EXCHANGE).
  **Ttmpfile** opens an O_TMPFILE file in a directory (its fd donated, a new fid naming it).
  **Topenfd** opens the regular file a fid names and donates the fd, the fid left as it was.
  Txattrcreate takes :data:`XATTR_REMOVE` (size 0 then sets an empty value).
* In the same dialect a packet may carry several requests back to back (at most msize bytes
  in all), each with its own size, type and tag.  The server answers them in order in ONE
  packet holding the replies back to back, with the fds that replies donate attached in
  reply order.  One packet each way is one switch between the processes however many
  requests it holds: the sentry sends "create, chown, getattr" or "setattr, getattr" as one.

Open flags (Tlopen, Tlcreate) are Linux x86_64 ``open(2)`` flags; modes are Linux mode bits;
errors (Rlerror) are Linux errno values.
"""
import struct
from typing import Annotated, Any, ClassVar, NamedTuple

VERSION = b"9P2000.L"
VERSION_FDS = b"9P2000.L.fds"  #: 9P2000.L plus fd donation (see the module docstring)
UNKNOWN_VERSION = b"unknown"

NOTAG = 0xFFFF
NOFID = 0xFFFFFFFF
NONUNAME = 0xFFFFFFFF
MAXWELEM = 16  #: most names in one Twalk (and qids in one Rwalk)
HEADER_SIZE = 7  #: size[4] type[1] tag[2]
IOHDRSZ = 24  #: room for a Tread/Twrite/Rread header within msize (iounit = msize - IOHDRSZ)
MIN_MSIZE = 4096
MAX_MSIZE = 1 << 17  #: largest msize we negotiate: fits one unix SEQPACKET packet by default

# qid.type bits
QTDIR, QTAPPEND, QTEXCL, QTMOUNT, QTAUTH, QTTMP, QTSYMLINK, QTFILE = (
    0x80, 0x40, 0x20, 0x10, 0x08, 0x04, 0x02, 0x00)

# Tgetattr request_mask / Rgetattr valid
GETATTR_MODE, GETATTR_NLINK, GETATTR_UID, GETATTR_GID = 0x1, 0x2, 0x4, 0x8
GETATTR_RDEV, GETATTR_ATIME, GETATTR_MTIME, GETATTR_CTIME = 0x10, 0x20, 0x40, 0x80
GETATTR_INO, GETATTR_SIZE, GETATTR_BLOCKS = 0x100, 0x200, 0x400
GETATTR_BTIME, GETATTR_GEN, GETATTR_DATA_VERSION = 0x800, 0x1000, 0x2000
GETATTR_BASIC, GETATTR_ALL = 0x7FF, 0x3FFF

# Tsetattr valid (a time bit without its _SET bit means "the server's current time")
SETATTR_MODE, SETATTR_UID, SETATTR_GID, SETATTR_SIZE = 0x1, 0x2, 0x4, 0x8
SETATTR_ATIME, SETATTR_MTIME, SETATTR_CTIME = 0x10, 0x20, 0x40
SETATTR_ATIME_SET, SETATTR_MTIME_SET = 0x80, 0x100

# Tlock / Tgetlock
LOCK_TYPE_RDLCK, LOCK_TYPE_WRLCK, LOCK_TYPE_UNLCK = 0, 1, 2
LOCK_FLAGS_BLOCK, LOCK_FLAGS_RECLAIM = 1, 2
LOCK_SUCCESS, LOCK_BLOCKED, LOCK_ERROR, LOCK_GRACE = 0, 1, 2, 3

AT_REMOVEDIR = 0x200  #: Tunlinkat flags
XATTR_CREATE, XATTR_REPLACE = 1, 2  #: Txattrcreate flags (setxattr(2)'s)
#: Txattrcreate flag of our dialect: remove the attribute.  Plain 9P removes on size 0, so it
#: cannot set an empty value; with VERSION_FDS size 0 sets one and this flag removes.
XATTR_REMOVE = 0x80000000


class ProtocolError(Exception):
    """Malformed 9P input (or a value that cannot be encoded).

    ``tag`` is the request's tag when the header could be read, so a server can still answer
    that request with Rlerror; ``None`` when even the header was unreadable.
    """

    def __init__(self, reason: str, tag: int | None = None) -> None:
        super().__init__(reason)
        self.tag = tag


class UnknownMessage(ProtocolError):
    """A well-framed message whose type number is not a 9P2000.L message we know."""


class Qid(NamedTuple):
    """The server's identity of a file: type (QT* bits), version, path (unique per file)."""

    type: int
    version: int
    path: int


class Attr(NamedTuple):
    """One node's attributes in an Rwalkstat (Rgetattr's basic fields, same names)."""

    qid: Qid
    mode: int
    uid: int
    gid: int
    nlink: int
    rdev: int
    size: int
    blksize: int
    blocks: int
    atime_sec: int
    atime_nsec: int
    mtime_sec: int
    mtime_nsec: int
    ctime_sec: int
    ctime_nsec: int


class Dirent(NamedTuple):
    """One Rreaddir entry; ``offset`` is where the *next* entry starts (pass it back)."""

    qid: Qid
    offset: int
    type: int  #: DT_* of the entry
    name: bytes


# --- field codecs ---------------------------------------------------------------------------

class _Fixed:
    """A fixed-size field: its struct format and how many values it unpacks to."""

    def __init__(self, fmt: str, nvalues: int = 1, make: Any = None) -> None:
        self.fmt, self.nvalues, self.make = fmt, nvalues, make


class _Var:
    """A variable-size field (string, data, lists)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind


U8 = Annotated[int, _Fixed("B")]
U16 = Annotated[int, _Fixed("H")]
U32 = Annotated[int, _Fixed("I")]
U64 = Annotated[int, _Fixed("Q")]
QID = Annotated[Qid, _Fixed("BIQ", 3, Qid)]
STR = Annotated[bytes, _Var("str")]  #: len[2] bytes
DATA = Annotated[bytes, _Var("data")]  #: count[4] bytes
QIDS = Annotated[tuple[Qid, ...], _Var("qids")]  #: n[2] n*qid[13]
NAMES = Annotated[tuple[bytes, ...], _Var("names")]  #: n[2] n*name[s]

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_QID = struct.Struct("<BIQ")
HEADER = struct.Struct("<IBH")


def _read_str(buf: memoryview, off: int) -> tuple[bytes, int]:
    if off + 2 > len(buf):
        raise ProtocolError("truncated string length")
    (n,) = _U16.unpack_from(buf, off)
    off += 2
    if off + n > len(buf):
        raise ProtocolError(f"string of {n} bytes overruns the message")
    return bytes(buf[off:off + n]), off + n


def _pack_str(s: bytes) -> bytes:
    if len(s) > 0xFFFF:
        raise ProtocolError(f"string of {len(s)} bytes does not fit in a 9P string")
    return _U16.pack(len(s)) + s


def _decode_var(kind: str, buf: memoryview, off: int) -> tuple[Any, int]:
    if kind == "str":
        return _read_str(buf, off)
    if kind == "data":
        if off + 4 > len(buf):
            raise ProtocolError("truncated data count")
        (n,) = _U32.unpack_from(buf, off)
        off += 4
        if off + n > len(buf):
            raise ProtocolError(f"data count {n} overruns the message")
        return bytes(buf[off:off + n]), off + n
    if off + 2 > len(buf):
        raise ProtocolError(f"truncated {kind} count")
    (n,) = _U16.unpack_from(buf, off)
    off += 2
    if n > MAXWELEM:
        raise ProtocolError(f"{n} walk elements (at most {MAXWELEM})")
    if kind == "qids":
        if off + 13 * n > len(buf):
            raise ProtocolError(f"{n} qids overrun the message")
        qids = tuple(Qid(*_QID.unpack_from(buf, off + 13 * i)) for i in range(n))
        return qids, off + 13 * n
    names = []
    for _ in range(n):
        name, off = _read_str(buf, off)
        names.append(name)
    return tuple(names), off


def _encode_var(kind: str, value: Any) -> bytes:
    if kind == "str":
        return _pack_str(value)
    if kind == "data":
        return _U32.pack(len(value)) + bytes(value)
    if len(value) > MAXWELEM:
        raise ProtocolError(f"{len(value)} walk elements (at most {MAXWELEM})")
    if kind == "qids":
        return _U16.pack(len(value)) + b"".join(_QID.pack(*q) for q in value)
    return _U16.pack(len(value)) + b"".join(_pack_str(n) for n in value)


# --- messages -------------------------------------------------------------------------------

#: type number -> message class
MESSAGES: dict[int, type["Message"]] = {}


class Message:
    """Base of every 9P message; subclasses list their body fields in wire order.

    ``class Tfoo(Message, code=N)`` registers the class under type number N, lets it be made
    from its fields in order (or by name), and compiles its fields into a plan of merged
    fixed-size runs and variable fields.  (Not dataclasses: making them cost a sixth of the
    gofer's start-up.)
    """

    TYPE: ClassVar[int]
    FIELDS: ClassVar[tuple[str, ...]] = ()
    _plan: ClassVar[tuple]

    def __init_subclass__(cls, code: int, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.TYPE = code
        annotations = cls.__dict__.get("__annotations__", {})
        cls.FIELDS = tuple(annotations)
        plan: list = []
        fixed: list = []  # [(name, _Fixed)] run being merged
        for name, ann in annotations.items():
            codec = ann.__metadata__[0]
            if isinstance(codec, _Fixed):
                fixed.append((name, codec))
                continue
            if fixed:
                plan.append(_fixed_step(fixed))
                fixed = []
            plan.append(("var", codec.kind, name))
        if fixed:
            plan.append(_fixed_step(fixed))
        cls._plan = tuple(plan)
        if code in MESSAGES:
            raise RuntimeError(f"9P type {code} defined twice")
        MESSAGES[code] = cls

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        fields = self.FIELDS
        if len(args) + len(kwargs) != len(fields) or (
                kwargs and not kwargs.keys() <= set(fields[len(args):])):
            raise TypeError(f"{type(self).__name__} takes the fields {', '.join(fields)}")
        self.__dict__.update(zip(fields, args))
        if kwargs:
            self.__dict__.update(kwargs)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and all(
            getattr(self, f) == getattr(other, f) for f in self.FIELDS)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{f}={getattr(self, f)!r}' for f in self.FIELDS)})"

    def encode_body(self) -> bytes:
        parts = []
        try:
            for step in self._plan:
                if step[0] == "fixed" and not step[3]:
                    d = self.__dict__
                    parts.append(step[1].pack(*[d[name] for name, _ in step[2]]))
                elif step[0] == "fixed":
                    values: list = []
                    for name, codec in step[2]:
                        v = getattr(self, name)
                        values.extend(v if codec.nvalues > 1 else (v,))
                    parts.append(step[1].pack(*values))
                else:
                    parts.append(_encode_var(step[1], getattr(self, step[2])))
        except (struct.error, TypeError) as e:
            raise ProtocolError(f"cannot encode {type(self).__name__}: {e}") from None
        return b"".join(parts)

    @classmethod
    def decode_body(cls, buf: memoryview, off: int) -> "Message":
        values: list = []  # in field order: the plan keeps it
        for step in cls._plan:
            if step[0] == "fixed":
                st = step[1]
                if off + st.size > len(buf):
                    raise ProtocolError(f"{cls.__name__} truncated")
                unpacked = st.unpack_from(buf, off)
                off += st.size
                if step[3]:  # a qid among the fields: regroup its three values
                    i = 0
                    for _, codec in step[2]:
                        if codec.nvalues > 1:
                            values.append(codec.make(*unpacked[i:i + codec.nvalues]))
                        else:
                            values.append(unpacked[i])
                        i += codec.nvalues
                else:
                    values.extend(unpacked)
            else:
                value, off = _decode_var(step[1], buf, off)
                values.append(value)
        if off != len(buf):
            raise ProtocolError(f"{len(buf) - off} trailing bytes after {cls.__name__}")
        return cls(*values)


def _fixed_step(fields: list) -> tuple:
    grouped = any(c.nvalues > 1 for _, c in fields)
    return ("fixed", struct.Struct("<" + "".join(c.fmt for _, c in fields)), tuple(fields), grouped)


class Rlerror(Message, code=7):
    ecode: U32


class Tstatfs(Message, code=8):
    fid: U32


class Rstatfs(Message, code=9):
    type: U32
    bsize: U32
    blocks: U64
    bfree: U64
    bavail: U64
    files: U64
    ffree: U64
    fsid: U64
    namelen: U32


class Tlopen(Message, code=12):
    fid: U32
    flags: U32


class Rlopen(Message, code=13):
    qid: QID
    iounit: U32


class Tlcreate(Message, code=14):
    fid: U32
    name: STR
    flags: U32
    mode: U32
    gid: U32


class Rlcreate(Message, code=15):
    qid: QID
    iounit: U32


class Tsymlink(Message, code=16):
    fid: U32
    name: STR
    symtgt: STR
    gid: U32


class Rsymlink(Message, code=17):
    qid: QID


class Tmknod(Message, code=18):
    dfid: U32
    name: STR
    mode: U32
    major: U32
    minor: U32
    gid: U32


class Rmknod(Message, code=19):
    qid: QID


class Treadlink(Message, code=22):
    fid: U32


class Rreadlink(Message, code=23):
    target: STR


class Tgetattr(Message, code=24):
    fid: U32
    request_mask: U64


class Rgetattr(Message, code=25):
    valid: U64
    qid: QID
    mode: U32
    uid: U32
    gid: U32
    nlink: U64
    rdev: U64
    size: U64
    blksize: U64
    blocks: U64
    atime_sec: U64
    atime_nsec: U64
    mtime_sec: U64
    mtime_nsec: U64
    ctime_sec: U64
    ctime_nsec: U64
    btime_sec: U64
    btime_nsec: U64
    gen: U64
    data_version: U64


class Tsetattr(Message, code=26):
    fid: U32
    valid: U32
    mode: U32
    uid: U32
    gid: U32
    size: U64
    atime_sec: U64
    atime_nsec: U64
    mtime_sec: U64
    mtime_nsec: U64


class Rsetattr(Message, code=27):
    pass


class Txattrwalk(Message, code=30):
    fid: U32
    newfid: U32
    name: STR


class Rxattrwalk(Message, code=31):
    size: U64


class Txattrcreate(Message, code=32):
    fid: U32
    name: STR
    attr_size: U64
    flags: U32


class Rxattrcreate(Message, code=33):
    pass


class Treaddir(Message, code=40):
    fid: U32
    offset: U64
    count: U32


class Rreaddir(Message, code=41):
    data: DATA  #: packed Dirents (encode_dirent / decode_dirents)


class Tfsync(Message, code=50):
    fid: U32
    datasync: U32


class Rfsync(Message, code=51):
    pass


class Tlock(Message, code=52):
    fid: U32
    type: U8
    flags: U32
    start: U64
    length: U64
    proc_id: U32
    client_id: STR


class Rlock(Message, code=53):
    status: U8


class Tgetlock(Message, code=54):
    fid: U32
    type: U8
    start: U64
    length: U64
    proc_id: U32
    client_id: STR


class Rgetlock(Message, code=55):
    type: U8
    start: U64
    length: U64
    proc_id: U32
    client_id: STR


class Tlink(Message, code=70):
    dfid: U32
    fid: U32
    name: STR


class Rlink(Message, code=71):
    pass


class Tmkdir(Message, code=72):
    dfid: U32
    name: STR
    mode: U32
    gid: U32


class Rmkdir(Message, code=73):
    qid: QID


class Trenameat(Message, code=74):
    olddirfid: U32
    oldname: STR
    newdirfid: U32
    newname: STR


class Rrenameat(Message, code=75):
    pass


class Tunlinkat(Message, code=76):
    dirfid: U32
    name: STR
    flags: U32


class Runlinkat(Message, code=77):
    pass


class Tversion(Message, code=100):
    msize: U32
    version: STR


class Rversion(Message, code=101):
    msize: U32
    version: STR


class Tattach(Message, code=104):
    fid: U32
    afid: U32
    uname: STR
    aname: STR
    n_uname: U32


class Rattach(Message, code=105):
    qid: QID


class Tflush(Message, code=108):
    oldtag: U16


class Rflush(Message, code=109):
    pass


class Twalk(Message, code=110):
    fid: U32
    newfid: U32
    wnames: NAMES


class Rwalk(Message, code=111):
    wqids: QIDS


class Tread(Message, code=116):
    fid: U32
    offset: U64
    count: U32


class Rread(Message, code=117):
    data: DATA


class Twrite(Message, code=118):
    fid: U32
    offset: U64
    data: DATA


class Rwrite(Message, code=119):
    count: U32


class Tclunk(Message, code=120):
    fid: U32


class Rclunk(Message, code=121):
    pass


class Twalkstat(Message, code=128):
    """Extension (VERSION_FDS only): Twalk that also answers attributes; newfid may be NOFID."""

    fid: U32
    newfid: U32
    wnames: NAMES


class Rwalkstat(Message, code=129):
    attrs: DATA  #: packed Attr records (encode_attrs / decode_attrs): fid's, then each name's


class Trenameat2(Message, code=130):
    """Extension (VERSION_FDS only): Trenameat with renameat2(2) flags."""

    olddirfid: U32
    oldname: STR
    newdirfid: U32
    newname: STR
    flags: U32


class Rrenameat2(Message, code=131):
    pass


class Ttmpfile(Message, code=132):
    """Extension (VERSION_FDS only): open(O_TMPFILE) in directory dfid; newfid names the
    nameless file (Tlink gives it a name unless flags had O_EXCL); its fd is donated."""

    dfid: U32
    newfid: U32
    flags: U32
    mode: U32
    gid: U32


class Rtmpfile(Message, code=133):
    qid: QID
    iounit: U32


class Topenfd(Message, code=134):
    """Extension (VERSION_FDS only): open the regular file fid names and donate the fd; the
    fid itself stays unopened (one request for what is Twalk + Tlopen + Tclunk)."""

    fid: U32
    flags: U32


class Ropenfd(Message, code=135):
    qid: QID
    iounit: U32


def is_request(msg_or_type: "Message | int") -> bool:
    """T-messages have even type numbers, their replies the next odd one."""
    code = msg_or_type if isinstance(msg_or_type, int) else msg_or_type.TYPE
    return code % 2 == 0


def reply_type(request: "type[Message]") -> "type[Message]":
    """The R-message class answering a T-message class."""
    return MESSAGES[request.TYPE + 1]


# --- framing --------------------------------------------------------------------------------

def encode(msg: Message, tag: int) -> bytes:
    """The whole message, header included."""
    body = msg.encode_body()
    size = HEADER_SIZE + len(body)
    if size > 0xFFFFFFFF or not 0 <= tag <= 0xFFFF:
        raise ProtocolError("message too large or tag out of range")
    return HEADER.pack(size, msg.TYPE, tag) + body


def decode(packet: bytes | bytearray | memoryview, msize: int = MAX_MSIZE) -> tuple[int, Message]:
    """(tag, message) of one whole message; ProtocolError if it is malformed or over msize."""
    buf = memoryview(packet)
    if len(buf) < HEADER_SIZE:
        raise ProtocolError(f"{len(buf)}-byte packet is shorter than a 9P header")
    size, code, tag = HEADER.unpack_from(buf, 0)
    if size != len(buf):
        raise ProtocolError(f"size field {size} but the packet has {len(buf)} bytes", tag)
    if size > msize:
        raise ProtocolError(f"{size}-byte message exceeds msize {msize}", tag)
    cls = MESSAGES.get(code)
    if cls is None:
        raise UnknownMessage(f"unknown 9P message type {code}", tag)
    try:
        return tag, cls.decode_body(buf, HEADER_SIZE)
    except ProtocolError as e:
        raise ProtocolError(str(e), tag) from None


def split_packet(packet: bytes | bytearray | memoryview) -> list[bytes]:
    """The messages of a packet holding several back to back (our dialect); ProtocolError
    if their size fields do not tile it exactly."""
    buf = memoryview(packet)
    out, off = [], 0
    while off < len(buf):
        if off + HEADER_SIZE > len(buf):
            raise ProtocolError("truncated header in a packet of several messages")
        (size,) = _U32.unpack_from(buf, off)
        if size < HEADER_SIZE or off + size > len(buf):
            raise ProtocolError(f"size field {size} does not fit the packet")
        out.append(bytes(buf[off:off + size]))
        off += size
    return out


def peek_header(buf: bytes | bytearray | memoryview) -> tuple[int, int, int]:
    """(size, type, tag) of a message's first 7 bytes (stream transports read size first)."""
    if len(buf) < HEADER_SIZE:
        raise ProtocolError("truncated 9P header")
    return HEADER.unpack_from(buf, 0)


# --- readdir entries ------------------------------------------------------------------------

_DIRENT_FIXED = struct.Struct("<BIQQB")  # qid, offset, type


def encode_dirent(d: Dirent) -> bytes:
    """One readdir record: qid[13] offset[8] type[1] name[s]."""
    try:
        return _DIRENT_FIXED.pack(*d.qid, d.offset, d.type) + _pack_str(d.name)
    except struct.error as e:
        raise ProtocolError(f"cannot encode dirent: {e}") from None


def dirent_size(name: bytes) -> int:
    return _DIRENT_FIXED.size + 2 + len(name)


def decode_dirents(data: bytes) -> list[Dirent]:
    """The records of an Rreaddir's data."""
    buf = memoryview(data)
    off, out = 0, []
    while off < len(buf):
        if off + _DIRENT_FIXED.size > len(buf):
            raise ProtocolError("truncated readdir entry")
        qtype, qversion, qpath, offset, dtype = _DIRENT_FIXED.unpack_from(buf, off)
        name, off = _read_str(buf, off + _DIRENT_FIXED.size)
        out.append(Dirent(Qid(qtype, qversion, qpath), offset, dtype, name))
    return out


# --- Rwalkstat records ----------------------------------------------------------------------

_ATTR = struct.Struct("<BIQIIIQQQQQQQQQQQ")  # qid, mode uid gid, nlink rdev size blksize blocks, times


def pack_attr(qid_type: int, version: int, st: Any) -> bytes:
    """One Attr record straight from an os.stat_result (the gofer's hot path); times before
    1970 as their two's complement, as Linux reads them."""
    try:
        return _ATTR.pack(qid_type, version, st.st_ino, st.st_mode, st.st_uid, st.st_gid,
                          st.st_nlink, st.st_rdev, st.st_size, st.st_blksize, st.st_blocks,
                          *_sec_nsec(st.st_atime_ns), *_sec_nsec(st.st_mtime_ns),
                          *_sec_nsec(st.st_ctime_ns))
    except struct.error as e:
        raise ProtocolError(f"cannot encode attributes: {e}") from None


def _sec_nsec(ns: int) -> tuple[int, int]:
    sec, nsec = divmod(ns, 1_000_000_000)
    return sec & 0xFFFFFFFFFFFFFFFF, nsec


def encode_attrs(attrs: "list[Attr] | tuple[Attr, ...]") -> bytes:
    """Rwalkstat's data: one fixed-size record per node."""
    try:
        return b"".join(_ATTR.pack(*a.qid, *a[1:]) for a in attrs)
    except struct.error as e:
        raise ProtocolError(f"cannot encode attributes: {e}") from None


def decode_attrs(data: bytes) -> list[Attr]:
    if len(data) % _ATTR.size:
        raise ProtocolError(f"{len(data)} bytes of attributes is not a whole number of records")
    return [Attr(Qid(*v[:3]), *v[3:]) for v in _ATTR.iter_unpack(data)]
