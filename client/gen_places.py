#!/usr/bin/env python3
"""Generates the client's table of municipality and county names from conf/municipalities.csv.

The CSV is the single source of truth (conf/README.md says where it comes from); the client
needs the names to take municipalities and counties by name and to show them, without reading
a file at run time.
"""
import csv
import sys


def c_string(s):
    return '"' + s.replace('\\', '\\\\').replace('"', '\\"') + '"'


def main(src, dst):
    with open(src, newline='', encoding='utf-8') as f:
        rows = sorted(csv.DictReader(f), key=lambda r: r['kommunkod'])
    counties = {}
    for r in rows:
        code, county = r['kommunkod'], r['county_code']
        if len(code) != 4 or not code.isdigit() or county != code[:2] or not r['name']:
            sys.exit(f'{src}: bad row {r!r}')
        if counties.setdefault(county, r['county_name']) != r['county_name']:
            sys.exit(f'{src}: county {county} has two names')
    if len(rows) != 290 or len({r["kommunkod"] for r in rows}) != 290 or len(counties) != 21:
        sys.exit(f'{src}: expected 290 municipalities in 21 counties')
    with open(dst, 'w', encoding='utf-8') as out:
        out.write('/* Generated from conf/municipalities.csv by client/gen_places.py. */\n')
        out.write('#include "places.h"\n\n')
        out.write('const struct places_municipality places_municipalities[PROTO_MUNICIPALITIES] = {\n')
        for r in rows:
            out.write(f'    {{"{r["kommunkod"]}", {c_string(r["name"])}, "{r["county_code"]}"}},\n')
        out.write('};\n\n')
        out.write('const struct places_county places_counties[PROTO_COUNTIES] = {\n')
        for code in sorted(counties):
            out.write(f'    {{"{code}", {c_string(counties[code])}}},\n')
        out.write('};\n')


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
