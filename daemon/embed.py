#!/usr/bin/env python3
"""Embeds a text file (the Redis function library) in a C source file as a byte array.

@SOURCE_DIGEST@ in the text becomes the first 16 hex digits of the SHA-1 of the file as it is
in the source tree, so that the text can tell one version of itself from another; the C file
has the same digits as NAME_digest."""
import hashlib
import sys


def main(src, dst, name):
    data = open(src, 'rb').read()
    digest = hashlib.sha1(data).hexdigest()[:16].encode()
    data = data.replace(b'@SOURCE_DIGEST@', digest)
    with open(dst, 'w') as out:
        out.write('/* Generated from %s by daemon/embed.py. */\n#include <stddef.h>\n\n' % src.split('/')[-1])
        out.write('extern const char %s[];\nextern const size_t %s_len;\n' % (name, name))
        out.write('extern const char %s_digest[];\n\n' % name)
        out.write('const char %s_digest[] = "%s";\n' % (name, digest.decode()))
        out.write('const char %s[] = {\n' % name)
        for i in range(0, len(data), 16):
            out.write('    ' + ', '.join('0x%02x' % b for b in data[i:i + 16]) + ',\n')
        out.write('    0x00,\n};\n')
        out.write('const size_t %s_len = %d;\n' % (name, len(data)))


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2], sys.argv[3])
