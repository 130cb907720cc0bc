#!/usr/bin/env python3
"""Writes the hostile-input tables and the fuzz seed corpora.

One source of truth for crafted frames: the C unit tests, the Python integration tests and the
fuzzers all read what this script writes. The msgpack bytes are encoded by hand (standard
library only) so that the script can produce what no well-behaved encoder would: truncated
documents, lying length prefixes, duplicate keys, non-string keys, ext types, 0xc1.

Outputs (paths relative to the repository root):
  tests/hostile/frames.tsv      hostile and control request frames (see README.md)
  tests/hostile/valid.tsv       one valid request of every op, every field filled in
  tests/hostile/replies.tsv     reply bodies, as seen by the client's reply decoder
  tests/fuzz/corpus/frame/      seeds for fuzz_frame: a stream of whole frames per file
  tests/fuzz/corpus/reply/      seeds for fuzz_reply: one reply body per file

Usage: gen_frames.py [--check] [ROOT]. With --check nothing is written; the exit status is 1
when a committed output differs from what the script would write.
"""
import os
import struct
import sys

MAX_FRAME = 65536

# ---- a msgpack encoder that can also lie --------------------------------------------------


class Raw(bytes):
    """Bytes spliced into the output as they are."""


class Str(bytes):
    """A msgpack str whose payload is these bytes, valid UTF-8 or not."""


class Map(list):
    """A map as a list of (key, value) pairs: keys may repeat or be of any type."""


class F32(float):
    """A float packed as float32."""


def _len_hdr(n, fix_base, fix_max, codes):
    if fix_base is not None and n <= fix_max:
        return bytes([fix_base | n])
    for code, width in codes:
        if n < (1 << (8 * width)):
            return bytes([code]) + n.to_bytes(width, 'big')
    raise ValueError(f'length {n} too large')


def enc(o):
    if isinstance(o, Raw):
        return bytes(o)
    if o is None:
        return b'\xc0'
    if o is True:
        return b'\xc3'
    if o is False:
        return b'\xc2'
    if isinstance(o, int):
        if 0 <= o <= 0x7f:
            return bytes([o])
        if o > 0:
            for code, width in ((0xcc, 1), (0xcd, 2), (0xce, 4), (0xcf, 8)):
                if o < (1 << (8 * width)):
                    return bytes([code]) + o.to_bytes(width, 'big')
            raise ValueError('integer too large')
        if o >= -32:
            return bytes([0x100 + o])
        for code, width in ((0xd0, 1), (0xd1, 2), (0xd2, 4), (0xd3, 8)):
            if o >= -(1 << (8 * width - 1)):
                return bytes([code]) + o.to_bytes(width, 'big', signed=True)
        raise ValueError('integer too small')
    if isinstance(o, F32):
        return b'\xca' + struct.pack('>f', o)
    if isinstance(o, float):
        return b'\xcb' + struct.pack('>d', o)
    if isinstance(o, Str):
        return _len_hdr(len(o), 0xa0, 31, ((0xd9, 1), (0xda, 2), (0xdb, 4))) + bytes(o)
    if isinstance(o, str):
        return enc(Str(o.encode('utf-8')))
    if isinstance(o, bytes):
        return _len_hdr(len(o), None, 0, ((0xc4, 1), (0xc5, 2), (0xc6, 4))) + o
    if isinstance(o, (list, tuple)) and not isinstance(o, Map):
        return _len_hdr(len(o), 0x90, 15, ((0xdc, 2), (0xdd, 4))) + b''.join(enc(x) for x in o)
    if isinstance(o, Map):
        return _len_hdr(len(o), 0x80, 15, ((0xde, 2), (0xdf, 4))) + b''.join(
            enc(k) + enc(v) for k, v in o)
    if isinstance(o, dict):
        return enc(Map(o.items()))
    raise TypeError(type(o))


def frame(body):
    return len(body).to_bytes(4, 'big') + body


# ---- personal identity numbers -------------------------------------------------------------


def luhn_digit(nine):
    total = 0
    for i, ch in enumerate(nine):
        v = int(ch) * (2 if i % 2 == 0 else 1)
        total += v - 9 if v > 9 else v
    return str((10 - total % 10) % 10)


def pin(yymmdd, nnn):
    """A 10-digit personal number with a valid check digit."""
    nine = yymmdd + nnn
    return nine + luhn_digit(nine)


PIN = pin('811218', '987')             # personnummer, 1981-12-18
PIN_COORD = pin('811278', '123')       # samordningsnummer: day 18 + 60
PIN_BAD = PIN[:9] + str((int(PIN[9]) + 1) % 10)  # same number, wrong check digit
assert luhn_digit(PIN_BAD[:9]) != PIN_BAD[9]

# ---- valid requests ------------------------------------------------------------------------

SHELTER_PROFILE = [
    ('name', 'Kvinnojouren Frida – Söder'),
    ('kind', 'kvinnojour'),
    ('municipality', '0180'),
    ('protection', 2),
    ('phone', '+46 8-123 456 78'),
    ('groups', ['women', 'hbtqi']),
    ('max_children', 4),
    ('boys_max_age', 12),
    ('pets', True),
    ('substance', False),
    ('languages', ['sv', 'en', 'ar']),
    ('intake_hours', 'mon-fri 08:00-16:30,sat 10:00-14:00'),
    ('competences', ['hbv', 'deaf']),
    ('operator', 'ideell'),
    ('ivo_permit', '3.5.1-12345/2024'),
    ('ivo_permit_date', '2024-04-01'),
    ('ivo_registered', False),
]

# A hold id as the server issues them: 'h' and 16 letters.
HOLD_ID = 'hbcdfghjkmnpqrstv'

# The referral of a search, which a hold carries too.
REFERRAL = [('home', '0180'), ('risk', 'high'), ('adults', 2),
               ('children', [Map([('age', 4), ('sex', 'f')]), Map([('age', 15), ('sex', 'm')])]),
               ('group', 'women'), ('wheelchair', False), ('pets', True), ('substance', False),
               ('language', 'ar'), ('perpetrator', ['0184', '0182']), ('exclude', ['0114']),
               ('need', ['hbv', 'interpreter'])]

VALID_ARGS = {
    'shelter.add': [('shelter', 'frida-sthlm')] + SHELTER_PROFILE,
    'shelter.update': [('shelter', 'frida-sthlm')] + SHELTER_PROFILE,
    'shelter.retire': [('shelter', 'frida-sthlm')],
    'shelter.show': [('shelter', 'frida-sthlm')],
    'shelter.list': [('county', '01'), ('municipality', '0180'), ('after', 'frida-sthlm')],
    'unit.add': [('shelter', 'frida-sthlm'), ('unit', 'r1'), ('beds', 3), ('accessible', True)],
    'unit.update': [('shelter', 'frida-sthlm'), ('unit', 'r1'), ('beds', 2),
                    ('accessible', False)],
    'unit.remove': [('shelter', 'frida-sthlm'), ('unit', 'r1')],
    'vacancy.set': [('shelter', 'frida-sthlm'), ('unit', 'r1'), ('state', 'free')],
    'vacancy.confirm': [('shelter', 'frida-sthlm')],
    'intake.pause': [('shelter', 'frida-sthlm')],
    'intake.resume': [('shelter', 'frida-sthlm')],
    'free': [('county', '12'), ('municipality', '1280'), ('after', 'lila-malmo')],
    'search': REFERRAL + [('limit', 20), ('arrival_at', 1700000000000)],
    'hold': [('shelter', 'frida-sthlm'), ('unit', 'r1'), ('ref', 'case/2024:A-42')] + REFERRAL +
            [('callback', '08-555 010 20'), ('idempotency_key', 'key-abcdefgh-01'),
             ('municipality', '0180'), ('child_basis', ['sol', 'lag_2024_79'])],
    # arrival_by is left out: a fixed time is in the past by the time a test sends it, which
    # the daemon refuses (it must lie in the next 24 hours).
    'hold.accept': [('hold', HOLD_ID)],
    'hold.release': [('hold', HOLD_ID)],
    'hold.confirm': [('hold', HOLD_ID), ('child_basis', ['lvu', 'sol'])],
    'hold.decline': [('hold', HOLD_ID), ('reason', 'needs'),
                     ('note', 'Ingen plats för husdjur just nu')],
    'placement.discharge': [('placement', 'pbcdfghjkmnpqrstv')],
    'holds.list': [('after', '1700000000000-' + HOLD_ID)],
    'placements.list': [('after', '1700000000000-pbcdfghjkmnpqrstv')],
    'audit': [('since', 1700000000000), ('principal', 'social:0180'), ('shelter', 'frida-sthlm'),
              ('limit', 100), ('person', 'SE2321000016-1234')],
    'stats': None,
    'whoami': [],
    'watch': [('since', '1700000000000-0'), ('county', '01'), ('municipality', '0180'),
              ('types', ['held', 'accepted', 'match'])],
    'standing.add': [('ref', 'case/2024:A-42')] + REFERRAL + [('hours', 24),
                                                              ('municipality', '0180')],
    'standing.list': None,
    'standing.cancel': [('standing', 'sbcdfghjkmnpqrstv')],
    # Months long past: a month is reported only once it has ended.
    'followup': [('county', '01'), ('municipality', '0180'), ('from_month', '2024-01'),
                 ('to_month', '2024-12')],
    'directory': [('after', 'frida-sthlm')],
}


CONTROL_IDS = {'shelter': 'ctl-shelter', 'unit': 'ctl-unit', 'hold': 'hcccccccccccccccc'}


def request(rid, op, args=None, extra=None):
    pairs = [('id', rid), ('op', op)]
    if args is not None:
        pairs.append(('args', Map(args)))
    if extra:
        pairs.extend(extra)
    return Map(pairs)


def valid(op):
    return VALID_ARGS[op]


def with_field(op, field, value, drop=()):
    """The valid args of op with field set to value (replaced in place, or appended)."""
    args = [(k, v) for k, v in (valid(op) or []) if k not in drop]
    for i, (k, _) in enumerate(args):
        if k == field:
            args[i] = (field, value)
            return args
    args.append((field, value))
    return args


def without(op, *fields):
    return [(k, v) for k, v in valid(op) if k not in fields]


# ---- the hostile table ---------------------------------------------------------------------

ROWS = []      # (name, code, survives, reply_id, kind, bytes)
_next_id = [100]


def rid():
    _next_id[0] += 1
    return _next_id[0]


def body(name, code, data, reply_id=None, survives=True):
    if not isinstance(data, bytes) or isinstance(data, (Str,)):
        data = enc(data)
    ROWS.append((name, code, survives, reply_id, 'body', bytes(data)))


def req(name, code, op, args=None, extra=None, id_=None):
    """A request row whose id is readable: the reply carries it."""
    i = rid() if id_ is None else id_
    body(name, code, request(i, op, args, extra), reply_id=i)


def stream(name, code, data):
    ROWS.append((name, code, False, None, 'stream', bytes(data)))


def hx(s):
    return bytes.fromhex(s.replace(' ', ''))


def build_rows():
    ok_body = enc(request(1, 'whoami', []))
    shelter_add = enc(request(1, 'shelter.add', valid('shelter.add')))

    # -- not a well-formed msgpack document within the limits: bad_frame, id unknown --
    body('empty_body', 'bad_frame', b'', survives=False)  # sent as a frame: length 0
    body('trunc_map_header_only', 'bad_frame', hx('83'))
    body('trunc_map_after_key', 'bad_frame', hx('81 a2 6964'))
    body('trunc_map_missing_pairs', 'bad_frame', hx('83 a2 6964 01 a2 6f70 a6 77686f616d69'))
    body('trunc_str_in_key', 'bad_frame', hx('81 a5 6964'))
    body('trunc_str_in_value', 'bad_frame', hx('82 a2 6964 01 a2 6f70 ab 73686f'))
    body('trunc_str8_length', 'bad_frame', hx('81 a1 6b d9'))
    body('trunc_str16_length', 'bad_frame', hx('81 a1 6b da 00'))
    body('trunc_str32_length', 'bad_frame', hx('81 a1 6b db 00 00'))
    body('trunc_array16_count', 'bad_frame', hx('dc 00'))
    body('trunc_map32_count', 'bad_frame', hx('df 00 00 00'))
    body('trunc_uint32_id', 'bad_frame', hx('81 a2 6964 ce 00 00'))
    body('trunc_uint64_id', 'bad_frame', hx('81 a2 6964 cf 00 00 00 00'))
    body('trunc_float64', 'bad_frame', hx('81 a2 6964 cb 00'))
    body('trunc_array_in_args', 'bad_frame',
         Map([('id', 1), ('op', 'shelter.update'),
              ('args', Raw(hx('82') + enc('shelter') + enc('a') + enc('groups') + hx('93') +
                           enc('women')))]))
    for cut in (1, 5, len(shelter_add) // 2, len(shelter_add) - 1):
        body(f'trunc_valid_request_at_{cut}', 'bad_frame', shelter_add[:cut])
    body('array32_huge_count_no_body', 'bad_frame', hx('dd 04 00 00 00'))
    body('array32_16m_count_no_body', 'bad_frame', hx('dd 00 10 00 00'))
    body('array32_max_count', 'bad_frame', hx('dd ff ff ff ff'))
    body('map32_max_count', 'bad_frame', hx('df ff ff ff ff'))
    body('map32_1g_count', 'bad_frame', hx('df 01 00 00 00'))
    body('map16_max_count', 'bad_frame', hx('de ff ff'))
    body('array16_257_no_body', 'bad_frame', hx('dc 01 01'))
    body('nested_array32_huge_chain', 'bad_frame', hx('dd 10 00 00 00') * 12)
    body('nested_array32_one_chain', 'bad_frame', hx('dd 00 00 00 01') * 12 + hx('c0'))
    body('nested_map32_chain', 'bad_frame', (hx('df 00 00 00 01') + hx('a1 6b')) * 8 + hx('c0'))
    body('args_array32_huge', 'bad_frame',
         hx('83 a2 6964 01 a2 6f70 a6 736561726368 a4 61726773 81 a8') + b'children' +
         hx('dd 04 00 00 00'))
    body('args_map32_huge', 'bad_frame',
         hx('83 a2 6964 01 a2 6f70 a6 736561726368 a4 61726773 df 00 00 10 00'))
    body('str32_max_length', 'bad_frame', hx('db ff ff ff ff 61'))
    body('str32_more_than_present', 'bad_frame',
         hx('82 a2 6964 01 a2 6f70 db 00 00 00 64') + b'whoami')
    body('str16_more_than_present', 'bad_frame', hx('81 a2 6964 da 01 00') + b'abc')
    body('bin32_more_than_present', 'bad_frame', hx('81 a2 6964 c6 7f ff ff ff 00'))
    body('depth5_nonempty', 'bad_frame',
         request(1, 'search', [('home', '0180'), ('risk', 'low'),
                               ('children', [Map([('age', [3]), ('sex', 'f')])])]))
    body('depth5_empty_array', 'bad_frame',
         request(1, 'search', [('home', '0180'), ('risk', 'low'),
                               ('children', [Map([('age', []), ('sex', 'f')])])]))
    body('depth5_empty_map', 'bad_frame',
         request(1, 'search', [('home', '0180'), ('risk', 'low'),
                               ('children', [Map([('age', Map()), ('sex', 'f')])])]))
    body('depth6_arrays', 'bad_frame', [[[[[[1]]]]]])
    req('depth4_child_value_wrong_type', 'bad_request', 'search',
        [('home', '0180'), ('risk', 'low'), ('children', [Map([('age', '3'), ('sex', 'f')])])])
    body('array_257_elements', 'bad_frame',
         request(1, 'search', [('home', '0180'), ('risk', 'low'), ('exclude', ['0114'] * 257)]))
    req('array_256_elements', 'bad_request', 'search',
        [('home', '0180'), ('risk', 'low'), ('exclude', ['0114'] * 256)])
    body('map_257_pairs', 'bad_frame',
         request(1, 'search', [(f'k{i:03d}', i % 100) for i in range(257)]))
    req('map_256_pairs', 'bad_request', 'search', [(f'k{i:03d}', i % 100) for i in range(256)])
    # root map, id, op, args and its map, key x and its array: 9 objects; then arrays of nil.
    def objects(total, i):
        rest = total - 9
        arrays, elems = [], rest
        while elems > 0:
            take = min(255, elems - 1)
            arrays.append([None] * take)
            elems -= take + 1
        assert 9 + len(arrays) + sum(len(a) for a in arrays) == total
        return request(i, 'whoami', [], extra=[('x', arrays)])
    body('objects_4097', 'bad_frame', objects(4097, 1))
    i = rid()
    body('objects_4096', 'bad_request', objects(4096, i), reply_id=i)
    body('trailing_nil', 'bad_frame', ok_body + hx('c0'))
    body('trailing_second_request', 'bad_frame', ok_body + ok_body)
    body('trailing_zero_byte', 'bad_frame', ok_body + hx('00'))
    body('fixext1_root', 'bad_frame', hx('d4 01 00'))
    body('fixext16_root', 'bad_frame', hx('d8 01') + bytes(16))
    body('ext8_root', 'bad_frame', hx('c7 01 05 00'))
    body('ext16_root', 'bad_frame', hx('c8 00 01 05 00'))
    body('ext32_root', 'bad_frame', hx('c9 00 00 00 01 05 00'))
    body('timestamp_ext_as_id', 'bad_frame', hx('82 a2 6964 d6 ff 00 00 00 01 a2 6f70 a6') +
         b'whoami')
    body('ext8_in_args', 'bad_frame',
         hx('83 a2 6964 01 a2 6f70 a6 77686f616d69 a4 61726773 81 a1 78 c7 02 01 00 00'))
    body('reserved_c1_root', 'bad_frame', hx('c1'))
    body('reserved_c1_as_id', 'bad_frame', hx('82 a2 6964 c1 a2 6f70 a6') + b'whoami')
    body('root_array', 'bad_frame', ['id', 1, 'op', 'whoami'])
    body('root_positive_int', 'bad_frame', 1)
    body('root_negative_int', 'bad_frame', -1)
    body('root_str', 'bad_frame', 'whoami')
    body('root_nil', 'bad_frame', None)
    body('root_true', 'bad_frame', True)
    body('root_float', 'bad_frame', 1.5)
    body('root_bin', 'bad_frame', enc(b'\x81\xa2id\x01'))

    # -- keys and the envelope --
    req('key_int_top_level', 'bad_request', 'whoami', [], extra=[(1, 1)])
    i = rid()
    body('key_int_before_id', 'bad_request', Map([(7, 'x'), ('id', i), ('op', 'whoami')]),
         reply_id=i)
    req('key_nil_top_level', 'bad_request', 'whoami', [], extra=[(None, 1)])
    req('key_array_top_level', 'bad_request', 'whoami', [], extra=[([1], 1)])
    body('key_bin_id', 'bad_request', Map([(b'id', 1), ('op', 'whoami')]))
    req('key_int_in_args', 'bad_request', 'shelter.show', [('shelter', 'a'), (1, 'x')])
    req('key_bin_in_args', 'bad_request', 'shelter.show', [(b'shelter', 'a')])
    req('key_int_in_child', 'bad_request', 'search',
        [('home', '0180'), ('risk', 'low'), ('children', [Map([(1, 3), ('sex', 'f')])])])
    body('duplicate_id', 'bad_request', Map([('id', 1), ('op', 'whoami'), ('id', 2)]))
    body('duplicate_id_same_value', 'bad_request', Map([('id', 5), ('id', 5), ('op', 'whoami')]))
    req('duplicate_op', 'bad_request', 'whoami', [], extra=[('op', 'whoami')])
    req('duplicate_op_different', 'bad_request', 'whoami', [], extra=[('op', 'stats')])
    req('duplicate_args', 'bad_request', 'whoami', [], extra=[('args', Map())])
    req('duplicate_field', 'bad_request', 'shelter.show', [('shelter', 'a'), ('shelter', 'b')])
    req('duplicate_field_same_value', 'bad_request', 'shelter.show',
        [('shelter', 'a'), ('shelter', 'a')])
    req('duplicate_child_key', 'bad_request', 'search',
        [('home', '0180'), ('risk', 'low'),
         ('children', [Map([('age', 3), ('sex', 'f'), ('age', 4)])])])
    req('duplicate_child_key_sex', 'bad_request', 'search',
        [('home', '0180'), ('risk', 'low'),
         ('children', [Map([('sex', 'f'), ('age', 3), ('sex', 'f')])])])
    body('missing_id', 'bad_request', Map([('op', 'whoami'), ('args', Map())]))
    body('id_string', 'bad_request', Map([('id', '1'), ('op', 'whoami')]))
    body('id_negative', 'bad_request', Map([('id', -1), ('op', 'whoami')]))
    body('id_negative_int64', 'bad_request', Map([('id', -(1 << 63)), ('op', 'whoami')]))
    body('id_float', 'bad_request', Map([('id', 1.0), ('op', 'whoami')]))
    body('id_nil', 'bad_request', Map([('id', None), ('op', 'whoami')]))
    body('id_bool', 'bad_request', Map([('id', True), ('op', 'whoami')]))
    body('id_bin', 'bad_request', Map([('id', b'\x01'), ('op', 'whoami')]))
    body('id_array', 'bad_request', Map([('id', [1]), ('op', 'whoami')]))
    body('empty_map', 'bad_request', Map())
    req('id_zero', 'ok', 'whoami', [], id_=0)
    req('id_uint64_max', 'ok', 'whoami', [], id_=(1 << 64) - 1)
    req('id_2_pow_63', 'ok', 'whoami', [], id_=1 << 63)
    i = rid()
    body('id_as_int16_positive', 'ok',
         hx('82 a2 6964 d1') + i.to_bytes(2, 'big') + hx('a2 6f70 a6') + b'whoami', reply_id=i)
    i = rid()
    body('missing_op', 'bad_request', Map([('id', i), ('args', Map())]), reply_id=i)
    i = rid()
    body('op_int', 'bad_request', Map([('id', i), ('op', 3)]), reply_id=i)
    i = rid()
    body('op_nil', 'bad_request', Map([('id', i), ('op', None)]), reply_id=i)
    i = rid()
    body('op_bin', 'bad_request', Map([('id', i), ('op', b'whoami')]), reply_id=i)
    i = rid()
    body('op_array', 'bad_request', Map([('id', i), ('op', ['whoami'])]), reply_id=i)
    req('op_unknown', 'unknown_op', 'shelter.delete', [])
    req('op_empty', 'unknown_op', '', [])
    req('op_upper_case', 'unknown_op', 'WHOAMI', [])
    req('op_prefix', 'unknown_op', 'shelter', [])
    req('op_trailing_nul', 'unknown_op', Str(b'whoami\x00'), [])
    req('op_trailing_space', 'unknown_op', 'whoami ', [])
    req('op_invalid_utf8', 'unknown_op', Str(b'who\xffami'), [])
    req('unknown_top_level_key', 'bad_request', 'whoami', [], extra=[('extra', 1)])
    req('unknown_top_level_key_version', 'bad_request', 'whoami', [], extra=[('v', 1)])
    i = rid()
    body('args_array', 'bad_request', Map([('id', i), ('op', 'shelter.show'), ('args', ['a'])]),
         reply_id=i)
    i = rid()
    body('args_string', 'bad_request', Map([('id', i), ('op', 'whoami'), ('args', 'x')]),
         reply_id=i)
    i = rid()
    body('args_nil', 'bad_request', Map([('id', i), ('op', 'whoami'), ('args', None)]),
         reply_id=i)
    req('unknown_field', 'bad_request', 'search', with_field('search', 'colour', 'red'))
    req('unknown_field_no_args_op', 'bad_request', 'whoami', [('x', 1)])
    req('field_not_allowed_whoami_shelter', 'bad_request', 'whoami', [('shelter', 'a')])
    req('field_not_allowed_vacancy_beds', 'bad_request', 'vacancy.set',
        with_field('vacancy.set', 'beds', 2))
    req('field_not_allowed_search_shelter', 'bad_request', 'search',
        with_field('search', 'shelter', 'a'))
    req('field_not_allowed_hold_reason', 'bad_request', 'hold',
        with_field('hold', 'reason', 'ok'))
    req('missing_required_phone', 'bad_request', 'shelter.add', without('shelter.add', 'phone'))
    req('missing_required_risk', 'bad_request', 'search', without('search', 'risk'))
    req('missing_required_home', 'bad_request', 'search', without('search', 'home'))
    req('missing_required_ref', 'bad_request', 'hold', without('hold', 'ref'))
    req('missing_required_reason', 'bad_request', 'hold.decline',
        without('hold.decline', 'reason'))
    req('missing_required_state', 'bad_request', 'vacancy.set', without('vacancy.set', 'state'))
    req('missing_args_shelter_show', 'bad_request', 'shelter.show')
    req('empty_args_unit_add', 'bad_request', 'unit.add', [])
    req('shelter_update_nothing_to_change', 'bad_request', 'shelter.update',
        [('shelter', 'frida-sthlm')])
    req('unit_update_nothing_to_change', 'bad_request', 'unit.update',
        [('shelter', 'frida-sthlm'), ('unit', 'r1')])
    req('free_municipality_not_in_county', 'bad_request', 'free',
        [('county', '01'), ('municipality', '1280')])
    req('shelter_list_municipality_not_in_county', 'bad_request', 'shelter.list',
        [('county', '12'), ('municipality', '0180')])
    req('shelter_list_after_empty', 'bad_request', 'shelter.list', [('after', '')])
    req('free_after_not_an_id', 'bad_request', 'free', [('after', 'frida sthlm')])
    req('directory_after_not_a_string', 'bad_request', 'directory', [('after', 7)])
    req('shelter_list_after_too_long', 'bad_request', 'shelter.list', [('after', 'a' * 33)])
    req('holds_list_after_not_an_id', 'bad_request', 'holds.list', [('after', 'Hold/1')])
    req('placements_list_after_empty', 'bad_request', 'placements.list', [('after', '')])

    # -- wrong types --
    req('type_string_for_integer', 'bad_request', 'unit.add', with_field('unit.add', 'beds', '3'))
    req('type_integer_for_string', 'bad_request', 'shelter.show', [('shelter', 7)])
    req('type_float_for_integer', 'bad_request', 'unit.add', with_field('unit.add', 'beds', 3.0))
    req('type_float32_for_integer', 'bad_request', 'search',
        with_field('search', 'limit', F32(5.0)))
    req('type_bin_for_string', 'bad_request', 'shelter.add',
        with_field('shelter.add', 'name', 'Frida'.encode()))
    req('type_bool_for_string', 'bad_request', 'shelter.add',
        with_field('shelter.add', 'name', True))
    req('type_nil_for_string', 'bad_request', 'shelter.show', [('shelter', None)])
    req('type_int_for_bool', 'bad_request', 'shelter.add', with_field('shelter.add', 'pets', 1))
    req('type_string_for_bool', 'bad_request', 'unit.add',
        with_field('unit.add', 'accessible', 'true'))
    req('type_string_for_array', 'bad_request', 'shelter.add',
        with_field('shelter.add', 'groups', 'women'))
    req('type_map_for_array', 'bad_request', 'search',
        with_field('search', 'children', Map([('age', 3), ('sex', 'f')])))
    req('type_int_for_municipality', 'bad_request', 'free', [('municipality', 180)])
    req('type_int_in_string_array', 'bad_request', 'search', with_field('search', 'exclude', [114]))
    req('type_string_for_since', 'bad_request', 'audit', [('since', '1700000000000')])

    # -- numbers out of range --
    for field, op, value in (
            ('beds', 'unit.add', -1), ('beds', 'unit.add', 0), ('beds', 'unit.add', 31),
            ('beds', 'unit.add', (1 << 64) - 1), ('beds', 'unit.add', 256 + 3),
            ('protection', 'shelter.add', 0), ('protection', 'shelter.add', 4),
            ('protection', 'shelter.add', -(1 << 63)),
            ('limit', 'search', 0), ('limit', 'search', 201), ('limit', 'audit', 65536 + 20),
            ('adults', 'search', 0), ('adults', 'search', 7),
            ('max_children', 'shelter.add', 21), ('boys_max_age', 'shelter.add', 18),
            ('since', 'audit', -1), ('since', 'audit', (1 << 64) - 1),
            ('since', 'audit', 1 << 63)):
        tag = str(value).replace('-', 'minus')
        req(f'range_{op.replace(".", "_")}_{field}_{tag}', 'bad_request', op,
            with_field(op, field, value))

    # -- UTF-8 and text --
    for tag, raw in (('overlong_slash', b'\xc0\xaf'), ('overlong_3byte', b'\xe0\x80\xaf'),
                     ('overlong_4byte', b'\xf0\x80\x80\xaf'), ('overlong_nul', b'\xc0\x80'),
                     ('lone_continuation', b'\x80'), ('surrogate_high', b'\xed\xa0\x80'),
                     ('surrogate_low', b'\xed\xbf\xbf'), ('truncated_2byte_at_end', b'\xc3'),
                     ('truncated_3byte_at_end', b'\xe2\x82'),
                     ('truncated_3byte_mid', b'\xe2\x82A'), ('above_max_code_point',
                                                              b'\xf4\x90\x80\x80'),
                     ('byte_f5', b'\xf5\x80\x80\x80'), ('byte_ff', b'\xff'),
                     ('control_char', b'\x01'), ('newline', b'\n'), ('nul', b'\x00'),
                     ('del', b'\x7f'), ('c1_control', b'\xc2\x85')):
        req(f'utf8_name_{tag}', 'bad_request', 'shelter.add',
            with_field('shelter.add', 'name', Str(b'Frida ' + raw + b' jour')))
    req('utf8_note_latin1', 'bad_request', 'hold.decline',
        with_field('hold.decline', 'note', Str('Ingen plats för husdjur'.encode('latin-1'))))
    req('reason_free_text', 'bad_request', 'hold.decline',
        with_field('hold.decline', 'reason', 'Ingen plats för husdjur'))
    req('reason_unknown_code', 'bad_request', 'hold.decline',
        with_field('hold.decline', 'reason', 'full'))
    req('name_empty', 'bad_request', 'shelter.add', with_field('shelter.add', 'name', ''))
    req('name_blank', 'bad_request', 'shelter.add', with_field('shelter.add', 'name', '   '))
    req('name_tabs', 'bad_request', 'shelter.add', with_field('shelter.add', 'name', '\t \t'))
    req('name_101_chars', 'bad_request', 'shelter.add',
        with_field('shelter.add', 'name', 'ä' * 101))
    req('note_201_chars', 'bad_request', 'hold.decline',
        with_field('hold.decline', 'note', 'x' * 201))
    req('note_empty', 'bad_request', 'hold.decline', with_field('hold.decline', 'note', ''))
    req('hold_without_referral', 'bad_request', 'hold', without('hold', 'home', 'risk'))
    req('intake_hours_bad_day', 'bad_request', 'shelter.update',
        with_field('shelter.update', 'intake_hours', 'mon-fre 08:00-16:00'))
    req('intake_hours_bad_time', 'bad_request', 'shelter.update',
        with_field('shelter.update', 'intake_hours', 'mon 25:00-26:00'))
    req('arrival_by_negative', 'bad_request', 'hold.accept',
        with_field('hold.accept', 'arrival_by', -1))
    req('arrival_by_string', 'bad_request', 'hold.accept',
        with_field('hold.accept', 'arrival_by', '08:00'))
    req('since_sequence_without_dash', 'bad_request', 'watch', [('since', '1700000000000')])
    req('since_sequence_letters', 'bad_request', 'watch', [('since', 'abc-1')])
    req('since_sequence_two_dashes', 'bad_request', 'watch', [('since', '1-2-3')])
    req('types_unknown', 'bad_request', 'watch', [('types', ['hold'])])
    req('types_repeated', 'bad_request', 'watch', [('types', ['held', 'held'])])
    req('types_empty', 'bad_request', 'watch', [('types', [])])
    req('hours_73', 'bad_request', 'standing.add', with_field('standing.add', 'hours', 73))
    req('hours_0', 'bad_request', 'standing.add', with_field('standing.add', 'hours', 0))
    req('standing_id_as_hold', 'bad_request', 'standing.cancel', [('standing', HOLD_ID)])
    req('standing_without_ref', 'bad_request', 'standing.add', without('standing.add', 'ref'))

    # -- reference data and enumerations --
    for code in ('0000', '1234', '018', '01800', '018a', ' 180', '0180\x00', ''):
        tag = code.replace('\x00', 'nul').replace(' ', 'sp') or 'empty'
        req(f'municipality_{tag}', 'bad_request', 'shelter.add',
            with_field('shelter.add', 'municipality', code))
    req('home_unknown', 'bad_request', 'search', with_field('search', 'home', '9999'))
    req('perpetrator_unknown', 'bad_request', 'search',
        with_field('search', 'perpetrator', ['0184', '0100']))
    req('perpetrator_11', 'bad_request', 'search',
        with_field('search', 'perpetrator', ['0184'] * 11))
    req('exclude_51', 'bad_request', 'search', with_field('search', 'exclude', ['0114'] * 51))
    req('hold_municipality_unknown', 'bad_request', 'hold',
        with_field('hold', 'municipality', '0001'))
    for code in ('00', '02', '11', '26', '1', '011', 'AB'):
        req(f'county_{code}', 'bad_request', 'free', [('county', code)])
    for field, op, value in (('kind', 'shelter.add', 'shelter'),
                             ('kind', 'shelter.add', 'Kvinnojour'),
                             ('state', 'vacancy.set', 'FREE'),
                             ('state', 'vacancy.set', 'held'),
                             ('risk', 'search', 'extreme'), ('risk', 'search', ''),
                             ('group', 'search', 'children')):
        req(f'enum_{field}_{value or "empty"}', 'bad_request', op, with_field(op, field, value))
    req('groups_duplicate', 'bad_request', 'shelter.add',
        with_field('shelter.add', 'groups', ['women', 'women']))
    req('groups_empty', 'bad_request', 'shelter.add', with_field('shelter.add', 'groups', []))
    req('groups_unknown', 'bad_request', 'shelter.add',
        with_field('shelter.add', 'groups', ['aliens']))
    req('groups_5', 'bad_request', 'shelter.add',
        with_field('shelter.add', 'groups', ['women', 'men', 'hbtqi', 'youth', 'women']))
    req('languages_upper_case', 'bad_request', 'shelter.add',
        with_field('shelter.add', 'languages', ['SV']))
    req('languages_word', 'bad_request', 'shelter.add',
        with_field('shelter.add', 'languages', ['svenska']))
    req('languages_one_letter', 'bad_request', 'shelter.add',
        with_field('shelter.add', 'languages', ['s']))
    req('languages_duplicate', 'bad_request', 'shelter.add',
        with_field('shelter.add', 'languages', ['sv', 'en', 'sv']))
    req('languages_17', 'bad_request', 'shelter.add',
        with_field('shelter.add', 'languages', [a + b for a in 'ab' for b in 'abcdefghi'][:17]))
    req('language_with_digit', 'bad_request', 'search', with_field('search', 'language', 'sv1'))

    # -- Swedish practice: competences, operator and IVO permit, each child's basis --
    req('competences_unknown', 'bad_request', 'shelter.add',
        with_field('shelter.add', 'competences', ['hedersvald']))
    req('competences_duplicate', 'bad_request', 'shelter.add',
        with_field('shelter.add', 'competences', ['hbv', 'npf', 'hbv']))
    req('competences_7', 'bad_request', 'shelter.add',
        with_field('shelter.add', 'competences',
                   ['hbv', 'psychiatric', 'npf', 'intellectual_disability', 'deaf',
                    'interpreter', 'hbv']))
    req('competences_string', 'bad_request', 'shelter.add',
        with_field('shelter.add', 'competences', 'hbv'))
    req('need_upper_case', 'bad_request', 'search', with_field('search', 'need', ['HBV']))
    req('need_duplicate', 'bad_request', 'hold', with_field('hold', 'need', ['deaf', 'deaf']))
    req('operator_unknown', 'bad_request', 'shelter.add',
        with_field('shelter.add', 'operator', 'region'))
    req('ivo_permit_without_date', 'bad_request', 'shelter.update',
        without('shelter.update', 'ivo_permit_date'))
    req('ivo_permit_date_without_permit', 'bad_request', 'shelter.update',
        without('shelter.update', 'ivo_permit'))
    req('ivo_permit_none_with_date', 'bad_request', 'shelter.update',
        with_field('shelter.update', 'ivo_permit', ''))
    req('ivo_permit_none_on_add', 'bad_request', 'shelter.add',
        with_field('shelter.add', 'ivo_permit', '', drop=('ivo_permit_date',)))
    req('ivo_permit_41_chars', 'bad_request', 'shelter.add',
        with_field('shelter.add', 'ivo_permit', 'p' * 41))
    req('ivo_permit_space', 'bad_request', 'shelter.add',
        with_field('shelter.add', 'ivo_permit', '3.5.1 12345'))
    for tag, value in (('feb_29_2023', '2023-02-29'), ('month_13', '2024-13-01'),
                       ('day_0', '2024-04-00'), ('no_dashes', '20240401'),
                       ('year_1999', '1999-12-31'), ('time', '2024-04-01T00:00')):
        req(f'ivo_permit_date_{tag}', 'bad_request', 'shelter.add',
            with_field('shelter.add', 'ivo_permit_date', value))
    req('ivo_registered_int', 'bad_request', 'shelter.add',
        with_field('shelter.add', 'ivo_registered', 1))
    req('child_basis_unknown', 'bad_request', 'hold.confirm',
        with_field('hold.confirm', 'child_basis', ['lss']))
    req('child_basis_13', 'bad_request', 'hold.confirm',
        with_field('hold.confirm', 'child_basis', ['sol'] * 13))
    req('child_basis_fewer_than_children', 'bad_request', 'hold',
        with_field('hold', 'child_basis', ['lvu']))
    req('child_basis_without_children', 'bad_request', 'hold',
        with_field('hold', 'child_basis', ['lvu'], drop=('children',)))
    req('child_basis_on_search', 'bad_request', 'search',
        with_field('search', 'child_basis', ['sol', 'sol']))
    # An empty permit records that the shelter has none (a revoked permit): allowed on update.
    req('control_ivo_permit_none', 'ok', 'shelter.update',
        [(k, CONTROL_IDS.get(k, v)) for k, v in
         with_field('shelter.update', 'ivo_permit', '', drop=('ivo_permit_date',))])
    req('language_non_ascii', 'bad_request', 'search', with_field('search', 'language', 'så'))

    # -- identifiers and tokens --
    for tag, value in (('empty', ''), ('33_chars', 'a' * 33), ('leading_dash', '-frida'),
                       ('leading_dot', '.frida'), ('space', 'frida sthlm'),
                       ('non_ascii_first', 'åsa-jour'), ('non_ascii_inside', 'jour-åsa'),
                       ('slash', 'frida/sthlm'),
                       ('colon', 'frida:sthlm'), ('nul', 'frida\x00'), ('newline', 'frida\n')):
        req(f'shelter_id_{tag}', 'bad_request', 'shelter.show', [('shelter', value)])
    req('unit_id_33_chars', 'bad_request', 'unit.remove',
        with_field('unit.remove', 'unit', 'r' * 33))
    req('hold_id_empty', 'bad_request', 'hold.release', [('hold', '')])
    req('hold_id_65_chars', 'bad_request', 'hold.release', [('hold', 'h' * 65)])
    req('hold_id_16_chars', 'bad_request', 'hold.release', [('hold', 'h' * 16)])
    req('hold_id_upper_case', 'bad_request', 'hold.release', [('hold', 'hBCDFGHJKMNPQRSTV')])
    req('hold_id_as_placement', 'bad_request', 'placement.discharge', [('placement', HOLD_ID)])
    # A personal identity number is no hold id: refused as such (and never stored).
    req('hold_id_personal_number', 'bad_request', 'hold.release', [('hold', 'h-' + PIN)])
    req('placement_id_personal_number', 'bad_request', 'placement.discharge',
        [('placement', PIN)])
    req('placement_id_space', 'bad_request', 'placement.discharge', [('placement', 'p 1')])
    req('ref_space', 'bad_request', 'hold', with_field('hold', 'ref', 'case 42'))
    req('ref_65_chars', 'bad_request', 'hold', with_field('hold', 'ref', 'c' * 65))
    req('idempotency_key_7_chars', 'bad_request', 'hold',
        with_field('hold', 'idempotency_key', 'k123456'))
    for tag, value in (('no_colon', 'social'), ('unknown_role', 'king:x'), ('system_no_id', 'system:'),
                       ('empty_id', 'social:'), ('space', 'social:a b'),
                       ('81_chars', 'admin:' + 'a' * 75)):
        req(f'principal_{tag}', 'bad_request', 'audit', [('principal', value)])
    for tag, value in (('empty', ''), ('space', 'SE 1'), ('leading_dash', '-SE1'),
                       ('81_chars', 'a' * 81), ('utf8', 'Åsa')):
        req(f'person_{tag}', 'bad_request', 'audit', [('person', value)])
    for tag, value in (('4_chars', '1234'), ('21_chars', '1' * 21), ('letters', 'abc12345'),
                       ('plus_inside', '+46+812345'), ('4_digits', '12-34'), ('empty', '')):
        req(f'phone_{tag}', 'bad_request', 'shelter.add', with_field('shelter.add', 'phone', value))

    # -- children --
    def kids(*children):
        return with_field('search', 'children', list(children))
    req('child_age_18', 'bad_request', 'search', kids(Map([('age', 18), ('sex', 'm')])))
    req('child_age_negative', 'bad_request', 'search', kids(Map([('age', -1), ('sex', 'm')])))
    req('child_age_string', 'bad_request', 'search', kids(Map([('age', '4'), ('sex', 'm')])))
    req('child_age_float', 'bad_request', 'search', kids(Map([('age', 4.0), ('sex', 'm')])))
    req('child_sex_x', 'bad_request', 'search', kids(Map([('age', 4), ('sex', 'x')])))
    req('child_sex_upper', 'bad_request', 'search', kids(Map([('age', 4), ('sex', 'M')])))
    req('child_sex_two_letters', 'bad_request', 'search', kids(Map([('age', 4), ('sex', 'mf')])))
    req('child_sex_empty', 'bad_request', 'search', kids(Map([('age', 4), ('sex', '')])))
    req('child_extra_key', 'bad_request', 'search',
        kids(Map([('age', 4), ('sex', 'm'), ('name', 'Anna')])))
    req('child_missing_sex', 'bad_request', 'search', kids(Map([('age', 4)])))
    req('child_missing_age', 'bad_request', 'search', kids(Map([('sex', 'f')])))
    req('child_empty_map', 'bad_request', 'search', kids(Map()))
    req('child_not_a_map', 'bad_request', 'search', kids(4))
    req('child_as_array', 'bad_request', 'search', kids([4, 'f']))
    req('children_13', 'bad_request', 'search', kids(*[Map([('age', 5), ('sex', 'f')])] * 13))

    # -- personal identity numbers: personal_data --
    pin12 = '19' + PIN
    for tag, op, field, value in (
            ('ref_10_digits', 'hold', 'ref', PIN),
            ('ref_10_digits_dash', 'hold', 'ref', PIN[:6] + '-' + PIN[6:]),
            ('ref_12_digits', 'hold', 'ref', pin12),
            ('ref_12_digits_dash', 'hold', 'ref', pin12[:8] + '-' + pin12[8:]),
            ('ref_embedded', 'hold', 'ref', 'case:' + PIN + '/a'),
            ('ref_coordination_number', 'hold', 'ref', PIN_COORD),
            ('ref_coordination_number_dash', 'hold', 'ref', PIN_COORD[:6] + '-' + PIN_COORD[6:]),
            ('idempotency_key', 'hold', 'idempotency_key', 'key-' + PIN),
            ('note_10_digits_plus', 'hold.decline', 'note',
             'Gäller ' + PIN[:6] + '+' + PIN[6:]),
            ('note_12_digits_space', 'hold.decline', 'note',
             'pnr ' + pin12[:8] + ' ' + pin12[8:] + ' saknas'),
            ('note_no_separator', 'hold.decline', 'note', 'Se ' + PIN),
            ('name_10_digits_dash', 'shelter.add', 'name', 'Anna ' + PIN[:6] + '-' + PIN[6:]),
            ('name_12_digits', 'shelter.add', 'name', pin12),
            ('name_coordination_number', 'shelter.add', 'name', 'Jour ' + PIN_COORD),
            ('shelter_id_10_digits', 'shelter.show', 'shelter', PIN),
            ('shelter_id_12_digits_dash', 'shelter.show', 'shelter', pin12[:8] + '-' + pin12[8:]),
            ('unit_id', 'unit.remove', 'unit', 'u' + PIN),
            ('principal', 'audit', 'principal', 'oncall:' + PIN),
            ('ivo_permit', 'shelter.add', 'ivo_permit', 'IVO-' + PIN),
            ('person', 'audit', 'person', PIN[:6] + '-' + PIN[6:]),
            # Written so the first guard let them through (issue 11).
            ('shelter_id_underscore', 'shelter.show', 'shelter', PIN[:6] + '_' + PIN[6:]),
            ('unit_id_dot', 'unit.remove', 'unit', PIN[:6] + '.' + PIN[6:]),
            ('ref_slash', 'hold', 'ref', 'KS/' + PIN[:6] + '/' + PIN[6:]),
            ('ref_colon', 'hold', 'ref', PIN[:6] + ':' + PIN[6:]),
            ('note_en_dash', 'hold.decline', 'note', PIN[:6] + '\u2013' + PIN[6:]),
            ('note_no_break_space', 'hold.decline', 'note', PIN[:6] + '\u00a0' + PIN[6:]),
            ('note_full_width', 'hold.decline', 'note',
             ''.join(chr(0xff10 + int(c)) for c in PIN)),
            ('note_split_by_spaces', 'hold.decline', 'note',
             '19 ' + ' '.join([PIN[0:2], PIN[2:4], PIN[4:6]]) + '-' + PIN[6:]),
            ('note_soft_hyphen', 'hold.decline', 'note', PIN[:6] + '\u00ad' + PIN[6:])):
        req(f'pin_{tag}', 'personal_data', op, with_field(op, field, value))

    # -- street addresses and postal codes: personal_data --
    for tag, op, field, value in (
            ('note_storgatan', 'hold.decline', 'note', 'Bor på Storgatan 12'),
            ('note_storgatan_comma', 'hold.decline', 'note', 'Storgatan, 12 B'),
            ('note_postal_code_spaced', 'hold.decline', 'note',
             'Flyttat till 123 45 Stockholm'),
            ('note_postal_code_joined', 'hold.decline', 'note', 'adress 21119 Malmö'),
            ('note_vastra_vagen', 'hold.decline', 'note', 'Västra vägen 3'),
            ('note_angsgrand', 'hold.decline', 'note', 'Ängsgränd 4B'),
            ('note_upper_case', 'hold.decline', 'note', 'STORGATAN 1'),
            ('note_box', 'hold.decline', 'note', 'Post till Box 123'),
            ('name_box', 'shelter.add', 'name', 'Box 123'),
            ('name_storgatan', 'shelter.add', 'name', 'Jouren Storgatan 12'),
            ('name_road', 'shelter.add', 'name', 'Shelter, 5 Abbey Road 7'),
            ('name_postal_code', 'shelter.add', 'name', 'Jouren 753 20 Uppsala'),
            # Written so the first guard let them through (issue 11).
            ('note_country_prefix', 'hold.decline', 'note', 'SE-123 45 Stockholm'),
            ('note_brackets', 'hold.decline', 'note', '(123 45 Stockholm)'),
            ('note_nr', 'hold.decline', 'note', 'Storgatan nr 12'),
            ('note_plan', 'hold.decline', 'note', 'Stureplan 4'),
            ('note_abbreviated', 'hold.decline', 'note', 'Kungsg. 12'),
            ('note_english_order', 'hold.decline', 'note', '12 Main Street'),
            ('note_care_of', 'hold.decline', 'note', 'c/o Andersson, Ringv 5'),
            ('note_apartment', 'hold.decline', 'note', 'Lgh 1102'),
            ('name_no_break_space', 'shelter.add', 'name', 'Storgatan\u00a012')):
        req(f'address_{tag}', 'personal_data', op, with_field(op, field, value))

    # -- negative controls: these must pass (code ok) --
    for tag, op, field, value in (
            ('phone_shaped_like_pin', 'shelter.update', 'phone', PIN[:6] + '-' + PIN[6:]),
            ('phone_mobile', 'shelter.update', 'phone', '070-123 45 67'),
            ('note_room_number', 'hold.decline', 'note', 'rum 12 är stängt'),
            ('note_floor', 'hold.decline', 'note', 'Rum 12, våning 3'),
            ('ref_bad_check_digit', 'hold', 'ref', PIN_BAD),
            ('ref_bad_check_digit_dash', 'hold', 'ref', PIN_BAD[:6] + '-' + PIN_BAD[6:]),
            ('note_13_digit_run', 'hold.decline', 'note', 'ärende ' + PIN + '123'),
            ('ref_11_digit_run', 'hold', 'ref', PIN + '1'),
            ('ref_century_17', 'hold', 'ref', '17' + PIN),
            ('note_month_13', 'hold.decline', 'note',
             'nr ' + pin('811318', '987')),
            ('note_day_32', 'hold.decline', 'note', 'nr ' + pin('811232', '987')),
            ('note_day_92', 'hold.decline', 'note', 'nr ' + pin('811292', '987')),
            ('note_postal_code_lower_case', 'hold.decline', 'note', 'kod 123 45 och mer'),
            ('note_street_word_no_number', 'hold.decline', 'note', 'Nära Storgatan i stan'),
            ('note_floor_plan', 'hold.decline', 'note', 'rummen på plan 3 renoveras'),
            ('note_date_and_time', 'hold.decline', 'note', 'kan ta emot 2026-11-30 08:00'),
            ('note_pieces', 'hold.decline', 'note', '3 st rum lediga'),
            ('audit_person_fingerprint', 'audit', 'person', 'sha256:' + '0123456789' * 6 + 'abcd'),
            ('name_number_word', 'shelter.add', 'name', 'Jour 24 timmar'),
            ('hold_id_with_digits', 'hold.release', 'hold', 'h' + PIN + '000000'),
            ('intake_hours_overnight', 'shelter.update', 'intake_hours', 'fri-sun 22:00-06:00'),
            ('intake_hours_24_7', 'shelter.update', 'intake_hours', '24/7'),
            ('name_swedish_letters', 'shelter.add', 'name', 'Ängelholms kvinnojour – Öst'),
            ('name_100_chars', 'shelter.add', 'name', 'å' * 100),
            ('shelter_id_32_chars', 'shelter.show', 'shelter', 'a' * 32),
            ('ref_64_chars', 'hold', 'ref', 'r' * 64),
            ('idempotency_key_8_chars', 'hold', 'idempotency_key', 'k1234567'),
            ('search_12_children', 'search', 'children',
             [Map([('age', 17), ('sex', 'm')])] * 12),
            ('search_50_excluded', 'search', 'exclude', ['0114'] * 50),
            ('shelter_boundaries', 'shelter.update', 'max_children', 20),
            ('audit_since_zero', 'audit', 'since', 0),
            ('ivo_permit_date_leap_day', 'shelter.update', 'ivo_permit_date', '2024-02-29'),
            ('ivo_permit_40_chars', 'shelter.update', 'ivo_permit', 'p' * 40),
            ('need_every_competence', 'search', 'need',
             ['hbv', 'psychiatric', 'npf', 'intellectual_disability', 'deaf', 'interpreter']),
            ('competences_none', 'shelter.update', 'competences', []),
            ('confirm_without_child_basis', 'hold.confirm', 'child_basis', [])):
        args = with_field(op, field, value)
        # Ids of their own, so that a control sent by a principal allowed to write cannot
        # touch the objects of other tests.
        args = [(k, CONTROL_IDS[k] if k in CONTROL_IDS and k != field else v) for k, v in args]
        req(f'control_{tag}', 'ok', op, args)

    # -- whole streams: the length prefix itself is hostile --
    stream('stream_length_zero', 'bad_frame', hx('00000000'))
    stream('stream_length_zero_then_valid_frame', 'bad_frame', hx('00000000') + frame(ok_body))
    stream('stream_length_default_max_plus_one', 'too_large',
           (MAX_FRAME + 1).to_bytes(4, 'big') + ok_body)
    stream('stream_length_16m_plus_one', 'too_large', (16 * 1024 * 1024 + 1).to_bytes(4, 'big'))
    stream('stream_length_max_uint32', 'too_large', hx('ffffffff'))

    # -- months of the follow-up (last, so that the rows above keep their ids) --
    for tag, month in (('no_dash', '202403'), ('day', '2024-03-01'), ('month_13', '2024-13'),
                       ('month_00', '2024-00'), ('year_1999', '1999-12'), ('year_2100', '2100-01'),
                       ('short', '2024-3'), ('letters', 'mars-24'), ('empty', '')):
        req(f'from_month_{tag}', 'bad_request', 'followup',
            with_field('followup', 'from_month', month))
    req('to_month_integer', 'bad_request', 'followup', with_field('followup', 'to_month', 202412))
    req('months_backwards', 'bad_request', 'followup',
        with_field('followup', 'from_month', '2025-01'))
    req('months_37', 'bad_request', 'followup',
        with_field('followup', 'from_month', '2021-12'))
    req('followup_municipality_outside_county', 'bad_request', 'followup',
        with_field('followup', 'municipality', '1480'))
    req('directory_with_args', 'bad_request', 'directory', [('county', '01')])


def build_replies():
    """Reply bodies and what proto_decode_reply makes of them: ok or bad_frame."""
    rows = []

    def r(name, code, obj):
        rows.append((name, code, obj if isinstance(obj, bytes) and not isinstance(obj, Str)
                     else enc(obj)))
    shelter = Map([('id', 'frida-sthlm'), ('name', 'Kvinnojouren Frida'), ('protection', 2),
                   ('groups', ['women']), ('max_children', None), ('stale', False),
                   ('units', [Map([('id', 'r1'), ('beds', 3), ('accessible', True),
                                   ('state', 'free'), ('held', False)])])])
    r('ok_nested_result', 'ok',
      Map([('id', 17), ('ok', True), ('result', Map([('shelter', shelter)]))]))
    r('ok_result_nil', 'ok', Map([('id', 1), ('ok', True), ('result', None)]))
    r('ok_id_nil', 'ok', Map([('id', None), ('ok', True), ('result', 1)]))
    r('ok_id_max', 'ok', Map([('id', (1 << 64) - 1), ('ok', True), ('result', Map())]))
    r('ok_keys_reordered', 'ok', Map([('result', [1, 2]), ('ok', True), ('id', 3)]))
    r('error_forbidden', 'ok', Map([('id', 17), ('ok', False), ('error', Map([
        ('code', 'forbidden'), ('message', 'a shelter may change only its own units')]))]))
    r('error_nil_id', 'ok', Map([('id', None), ('ok', False), ('error', Map([
        ('code', 'bad_frame'), ('message', 'empty frame')]))]))
    r('error_unknown_code', 'ok', Map([('id', 2), ('ok', False), ('error', Map([
        ('code', 'brand_new_code'), ('message', 'from a newer server')]))]))
    r('error_long_message', 'ok', Map([('id', 2), ('ok', False), ('error', Map([
        ('code', 'internal'), ('message', 'ö' * 300)]))]))
    r('error_long_code', 'ok', Map([('id', 2), ('ok', False), ('error', Map([
        ('code', 'c' * 100), ('message', 'm')]))]))
    r('missing_ok', 'bad_frame', Map([('id', 1), ('result', 1)]))
    r('missing_id', 'bad_frame', Map([('ok', True), ('result', 1)]))
    r('ok_not_bool', 'bad_frame', Map([('id', 1), ('ok', 1), ('result', 1)]))
    r('id_negative', 'bad_frame', Map([('id', -1), ('ok', True), ('result', 1)]))
    r('id_string', 'bad_frame', Map([('id', '1'), ('ok', True), ('result', 1)]))
    r('ok_without_result', 'bad_frame', Map([('id', 1), ('ok', True)]))
    r('error_without_error', 'bad_frame', Map([('id', 1), ('ok', False)]))
    r('error_not_a_map', 'bad_frame', Map([('id', 1), ('ok', False), ('error', 'forbidden')]))
    r('error_code_int', 'bad_frame', Map([('id', 1), ('ok', False), ('error', Map([
        ('code', 7), ('message', 'x')]))]))
    r('error_missing_message', 'bad_frame', Map([('id', 1), ('ok', False), ('error', Map([
        ('code', 'forbidden')]))]))
    r('root_array', 'bad_frame', [1, True, None])
    r('empty', 'bad_frame', b'')
    r('ext_in_result', 'bad_frame', hx('83 a2 6964 01 a2 6f6b c3 a6 726573756c74 d4 01 00'))
    r('array32_huge_result', 'bad_frame', hx('83 a2 6964 01 a2 6f6b c3 a6 726573756c74') +
      hx('dd 04 00 00 00'))
    deep = 1
    for _ in range(15):
        deep = [deep]
    r('depth16_result', 'ok', Map([('id', 1), ('ok', True), ('result', deep)]))
    r('depth17_result', 'bad_frame', Map([('id', 1), ('ok', True), ('result', [deep])]))
    r('list_of_300_shelters', 'ok', Map([('id', 4), ('ok', True), ('result', Map([
        ('shelters', [Map([('id', f's{i}'), ('name', 'Jour'), ('free_units', i % 3),
                           ('stale', False)]) for i in range(300)])]))]))
    r('trailing_byte', 'bad_frame',
      enc(Map([('id', 1), ('ok', True), ('result', None)])) + b'\xc0')
    r('truncated', 'bad_frame', enc(Map([('id', 1), ('ok', True), ('result', 'abc')]))[:-1])
    return rows


# ---- output --------------------------------------------------------------------------------


def tsv_frames():
    names = set()
    lines = [
        '# Hostile and control request frames. Generated by tests/hostile/gen_frames.py: edit',
        '# that script, not this file. Columns (tab-separated):',
        '#   name      unique row name',
        '#   code      expected error code, or ok: the frame passes protocol validation',
        '#   survives  yes: the connection stays open after the reply; no: it is closed',
        '#   id        id the reply must carry, or nil',
        '#   kind      body: a frame body, to be sent after a 4-byte big-endian length of its',
        '#             size; stream: raw bytes to send as they are, length prefix included',
        '#   hex       the bytes, lower-case hex (empty for an empty body)',
        'name\tcode\tsurvives\tid\tkind\thex',
    ]
    for name, code, survives, reply_id, kind, data in ROWS:
        assert name not in names, name
        names.add(name)
        assert code in ('ok', 'bad_frame', 'too_large', 'bad_request', 'unknown_op',
                        'personal_data'), code
        if kind == 'body':
            assert len(data) <= MAX_FRAME
        lines.append('\t'.join((name, code, 'yes' if survives else 'no',
                                'nil' if reply_id is None else str(reply_id), kind, data.hex())))
    return '\n'.join(lines) + '\n'


def valid_bodies():
    out = []
    for n, op in enumerate(VALID_ARGS):
        out.append((op, n + 1, enc(request(n + 1, op, VALID_ARGS[op]))))
    return out


def tsv_valid():
    lines = [
        '# One valid request of every op, every field filled in. Generated by',
        '# tests/hostile/gen_frames.py. Columns: op, id, hex of the frame body.',
        'op\tid\thex',
    ]
    for op, i, data in valid_bodies():
        lines.append(f'{op}\t{i}\t{data.hex()}')
    return '\n'.join(lines) + '\n'


def tsv_replies(replies):
    lines = [
        '# Reply bodies and what the reply decoder makes of them (ok or bad_frame). Generated',
        '# by tests/hostile/gen_frames.py. Columns: name, code, hex of the frame body.',
        'name\tcode\thex',
    ]
    for name, code, data in replies:
        lines.append(f'{name}\t{code}\t{data.hex()}')
    return '\n'.join(lines) + '\n'


def outputs(replies):
    files = {
        'tests/hostile/frames.tsv': tsv_frames().encode(),
        'tests/hostile/valid.tsv': tsv_valid().encode(),
        'tests/hostile/replies.tsv': tsv_replies(replies).encode(),
    }
    all_valid = b''
    for op, _, data in valid_bodies():
        files[f'tests/fuzz/corpus/frame/valid-{op}'] = frame(data)
        all_valid += frame(data)
    files['tests/fuzz/corpus/frame/stream-all-valid'] = all_valid
    for name, _, _, _, kind, data in ROWS:
        files[f'tests/fuzz/corpus/frame/hostile-{name}'] = frame(data) if kind == 'body' else data
    files['tests/fuzz/corpus/frame/stream-valid-hostile-valid'] = (
        frame(enc(request(1, 'whoami', []))) + frame(bytes.fromhex('dd04000000')) +
        frame(enc(request(2, 'stats'))))
    for name, _, data in replies:
        files[f'tests/fuzz/corpus/reply/{name}'] = data
    return files


GENERATED_DIRS = ('tests/fuzz/corpus/frame', 'tests/fuzz/corpus/reply')
KEEP_PREFIX = 'regress-'  # fuzzer findings kept by hand; never written or removed here


def main(argv):
    check = '--check' in argv
    args = [a for a in argv if a != '--check']
    root = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), '..',
                                             '..')
    build_rows()
    files = outputs(build_replies())
    stale = []
    for d in GENERATED_DIRS:
        full = os.path.join(root, d)
        if os.path.isdir(full):
            for f in sorted(os.listdir(full)):
                rel = f'{d}/{f}'
                if rel not in files and not f.startswith(KEEP_PREFIX):
                    stale.append(rel)
    differ = []
    for rel, data in files.items():
        path = os.path.join(root, rel)
        try:
            with open(path, 'rb') as f:
                same = f.read() == data
        except FileNotFoundError:
            same = False
        if not same:
            differ.append(rel)
            if not check:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, 'wb') as f:
                    f.write(data)
    if not check:
        for rel in stale:
            os.remove(os.path.join(root, rel))
    if check:
        for rel in differ:
            print(f'out of date: {rel}')
        for rel in stale:
            print(f'not generated: {rel}')
        print(f'{len(files)} generated files, {len(differ)} out of date, {len(stale)} stale')
        return 1 if differ or stale else 0
    print(f'{len(ROWS)} hostile rows, {len(files)} files, {len(differ)} written, '
          f'{len(stale)} removed')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
