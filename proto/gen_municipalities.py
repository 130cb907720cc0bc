#!/usr/bin/env python3
"""Generates the municipality code table of the proto library from conf/municipalities.csv.

The CSV is the single source of truth (see conf/README.md for where it comes from); the proto
library needs the codes alone, to validate requests without the daemon's geography.
"""
import csv
import sys


def main(src, dst):
    with open(src, newline='', encoding='utf-8') as f:
        rows = list(csv.DictReader(f))
    codes = sorted(r['kommunkod'] for r in rows)
    if len(codes) != 290 or len(set(codes)) != 290:
        sys.exit(f'{src}: expected 290 distinct municipality codes, found {len(set(codes))}')
    for c in codes:
        if len(c) != 4 or not c.isdigit():
            sys.exit(f'{src}: bad municipality code {c!r}')
    counties = sorted({c[:2] for c in codes})
    if len(counties) != 21:
        sys.exit(f'{src}: expected 21 counties, found {len(counties)}')
    with open(dst, 'w', encoding='utf-8') as out:
        out.write('/* Generated from conf/municipalities.csv by proto/gen_municipalities.py. */\n')
        out.write('#include "proto_internal.h"\n\n')
        out.write('const char proto_municipality_codes[PROTO_MUNICIPALITIES][5] = {\n')
        for i in range(0, len(codes), 10):
            out.write('    ' + ', '.join(f'"{c}"' for c in codes[i:i + 10]) + ',\n')
        out.write('};\n\n')
        out.write('const char proto_county_codes[PROTO_COUNTIES][3] = {\n')
        out.write('    ' + ', '.join(f'"{c}"' for c in counties) + ',\n')
        out.write('};\n')


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
