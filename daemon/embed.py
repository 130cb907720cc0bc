#!/usr/bin/env python3
"""Embeds a text file (the Redis function library) in a C source file as a byte array."""
import sys


def main(src, dst, name):
    data = open(src, 'rb').read()
    with open(dst, 'w') as out:
        out.write('/* Generated from %s by daemon/embed.py. */\n#include <stddef.h>\n\n' % src.split('/')[-1])
        out.write('extern const char %s[];\nextern const size_t %s_len;\n\n' % (name, name))
        out.write('const char %s[] = {\n' % name)
        for i in range(0, len(data), 16):
            out.write('    ' + ', '.join('0x%02x' % b for b in data[i:i + 16]) + ',\n')
        out.write('    0x00,\n};\n')
        out.write('const size_t %s_len = %d;\n' % (name, len(data)))


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2], sys.argv[3])
