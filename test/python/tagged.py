"""Tagged-JSON ("T") form of Python values, shared by the test fixtures.

JSON cannot carry the distinctions jelly makes (bytes vs str, int vs float,
tuple vs list, set order, object identity), so every value crosses the
process boundary as a tagged array.  See README.md in this directory for the
format.  Only the standard library is used so that this module also works
with interpreters that lack Twisted.
"""

import struct

# Tags for containers that may be shared (appear more than once by identity).
_CONTAINERS = (list, tuple, dict, set, frozenset)


def float_to_hex(value):
    # Big-endian IEEE-754 bits keep NaN payloads, infinities and -0.0 exact.
    return struct.pack(">d", value).hex()


def hex_to_float(text):
    raw = bytes.fromhex(text)
    if len(raw) != 8:
        raise ValueError("float needs 16 hex digits, got %r" % (text,))
    return struct.unpack(">d", raw)[0]


def _qual(cls):
    return "%s.%s" % (cls.__module__, cls.__qualname__)


def _is_container(obj):
    # Exact type checks: subclasses (e.g. crefutil placeholders) are not
    # plain containers and are reported as objects instead.
    return type(obj) in _CONTAINERS


# ---------------------------------------------------------------------------
# Python object -> T


def to_tagged(obj):
    """Describe a Python object graph as T, marking shared containers."""
    counts = {}
    _count(obj, counts)
    shared = {key for key, n in counts.items() if n > 1}
    return _Emitter(shared).emit(obj)


def _children(obj):
    """Children in the depth-first, left-to-right order T uses."""
    if type(obj) is dict:
        for key, value in obj.items():
            yield key
            yield value
    elif _is_container(obj):
        yield from obj
    elif _is_remote_reference(obj):
        return
    elif hasattr(obj, "__dict__"):
        yield obj.__dict__


def _count(obj, counts):
    # Count occurrences by id(); only descend on the first visit so cycles
    # terminate.  Scalars are never shared, whatever CPython interns.
    if not (_is_container(obj) or _is_object(obj)):
        return
    key = id(obj)
    counts[key] = counts.get(key, 0) + 1
    if counts[key] == 1:
        for child in _children(obj):
            _count(child, counts)


def _is_object(obj):
    return hasattr(obj, "__dict__") and not isinstance(obj, type)


def _is_remote_reference(obj):
    # Matched by name, so this module never needs to import Twisted.
    cls = type(obj)
    return cls.__name__ == "RemoteReference" and cls.__module__ == "twisted.spread.pb"


class _Emitter:
    def __init__(self, shared):
        self.shared = shared
        self.ids = {}

    def emit(self, obj):
        key = id(obj)
        if key in self.shared:
            if key in self.ids:
                return ["same", self.ids[key]]
            self.ids[key] = len(self.ids) + 1
            return ["shared", self.ids[key], self._body(obj)]
        return self._body(obj)

    def _body(self, obj):
        # bool before int: bool is an int subclass.
        if obj is None:
            return ["none"]
        if type(obj) is bool:
            return ["bool", obj]
        if isinstance(obj, int):
            return ["int", str(int(obj))]
        if isinstance(obj, float):
            return ["float", float_to_hex(obj)]
        if isinstance(obj, bytes):
            return ["bytes", obj.hex()]
        if isinstance(obj, str):
            return ["str", obj]
        kind = type(obj)
        if kind is list:
            return ["list", [self.emit(x) for x in obj]]
        if kind is tuple:
            return ["tuple", [self.emit(x) for x in obj]]
        if kind is set:
            return ["set", [self.emit(x) for x in obj]]
        if kind is frozenset:
            return ["frozenset", [self.emit(x) for x in obj]]
        if kind is dict:
            return ["dict", [[self.emit(k), self.emit(v)] for k, v in obj.items()]]
        # Extensions, produced only (never accepted by from_tagged):
        if _is_remote_reference(obj):
            return ["remote", self.emit(obj.luid)]
        if _is_object(obj):
            return ["object", _qual(kind), self.emit(obj.__dict__)]
        return ["repr", _qual(kind), repr(obj)]


# ---------------------------------------------------------------------------
# T -> Python object


class _Pending:
    """Stands in for a shared immutable container still being built."""

    def __init__(self, ident):
        self.ident = ident


def from_tagged(tagged):
    """Build the Python object graph a T value describes."""
    return _Builder().build(tagged, None)


class _Builder:
    def __init__(self):
        self.done = {}  # shared id -> finished object
        self.pending = {}  # shared id -> list of (container, key) to patch

    def build(self, t, slot):
        # `slot` is (mutable container, key) when the value lands in a list
        # element or dict value; only there can a forward reference to an
        # unfinished tuple/set be patched later.
        if not isinstance(t, list) or not t or not isinstance(t[0], str):
            raise ValueError("malformed tagged value: %r" % (t,))
        tag = t[0]
        if tag == "shared":
            _expect(t, 3)
            return self._shared(t[1], t[2], slot)
        if tag == "same":
            _expect(t, 2)
            return self._same(t[1], slot)
        return self._plain(t, None)

    def _shared(self, ident, body, slot):
        if not isinstance(ident, int) or ident in self.done or ident in self.pending:
            raise ValueError("bad or duplicate shared id %r" % (ident,))
        if not isinstance(body, list) or not body:
            raise ValueError("malformed shared body: %r" % (body,))
        if body[0] in ("list", "dict"):
            # Mutable: allocate first so inner "same" references (cycles)
            # resolve to the real object.
            obj = [] if body[0] == "list" else {}
            self.done[ident] = obj
            self._plain(body, obj)
            return obj
        self.pending[ident] = []
        obj = self._plain(body, None)
        for container, key in self.pending.pop(ident):
            container[key] = obj
        self.done[ident] = obj
        return obj

    def _same(self, ident, slot):
        if ident in self.done:
            return self.done[ident]
        if ident in self.pending:
            if slot is None:
                raise ValueError(
                    "cycle through an immutable container at id %r is only "
                    "supported from a list element or dict value" % (ident,)
                )
            self.pending[ident].append(slot)
            return _Pending(ident)
        raise ValueError("'same' refers to unknown id %r" % (ident,))

    def _plain(self, t, into):
        tag = t[0]
        if tag == "none":
            _expect(t, 1)
            return None
        if tag == "bool":
            _expect(t, 2)
            if not isinstance(t[1], bool):
                raise ValueError("bool needs true/false: %r" % (t,))
            return t[1]
        if tag == "int":
            _expect(t, 2)
            if not isinstance(t[1], str):
                raise ValueError("int needs a decimal string: %r" % (t,))
            return int(t[1], 10)
        if tag == "float":
            _expect(t, 2)
            return hex_to_float(t[1])
        if tag == "bytes":
            _expect(t, 2)
            return bytes.fromhex(t[1])
        if tag == "str":
            _expect(t, 2)
            if not isinstance(t[1], str):
                raise ValueError("str needs a JSON string: %r" % (t,))
            return t[1]
        if tag == "list":
            items = _items(t)
            out = [] if into is None else into
            for item in items:
                out.append(None)
                out[-1] = self.build(item, (out, len(out) - 1))
            return out
        if tag == "dict":
            pairs = _items(t)
            out = {} if into is None else into
            for pair in pairs:
                if not isinstance(pair, list) or len(pair) != 2:
                    raise ValueError("dict entry must be [key, value]: %r" % (pair,))
                key = self._immutable(self.build(pair[0], None))
                out[key] = None
                out[key] = self.build(pair[1], (out, key))
            return out
        if tag in ("tuple", "set", "frozenset"):
            items = [self._immutable(self.build(x, None)) for x in _items(t)]
            return {"tuple": tuple, "set": set, "frozenset": frozenset}[tag](items)
        raise ValueError("unknown tag %r" % (tag,))

    @staticmethod
    def _immutable(value):
        if isinstance(value, _Pending):
            raise ValueError(
                "cycle through an immutable container at id %r is not supported"
                % (value.ident,)
            )
        return value


def _expect(t, n):
    if len(t) != n:
        raise ValueError("tag %r takes %d fields: %r" % (t[0], n - 1, t))


def _items(t):
    _expect(t, 2)
    if not isinstance(t[1], list):
        raise ValueError("%s needs a list of items: %r" % (t[0], t))
    return t[1]
