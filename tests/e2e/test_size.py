"""The release binary (issue 16's target "binary <= 400 KiB", which make
bench reports too): ./relay as `make relay` links it -- static, stripped --
is at most 400 KiB. Always the file at the top of the tree, not RELAY_BIN
(an ASan build is far bigger). When it fails, `sh tools/sizes.sh` says what
each object file puts in the binary."""
import os
import struct

from harness import ROOT

LIMIT = 400 * 1024
BINARY = os.path.join(ROOT, 'relay')


def elf_facts(path):
    """(has PT_INTERP, section names) of a 64-bit little-endian ELF file."""
    with open(path, 'rb') as f:
        data = f.read()
    assert data[:4] == b'\x7fELF' and data[4] == 2 and data[5] == 1, 'not a 64-bit LE ELF file'
    phoff, shoff = struct.unpack_from('<QQ', data, 0x20)
    phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from('<HHHHH', data, 0x36)
    interp = any(struct.unpack_from('<I', data, phoff + i * phentsize)[0] == 3
                 for i in range(phnum))
    names = []
    if shnum:
        stroff = struct.unpack_from('<Q', data, shoff + shstrndx * shentsize + 0x18)[0]
        for i in range(shnum):
            off = struct.unpack_from('<I', data, shoff + i * shentsize)[0]
            end = data.index(b'\0', stroff + off)
            names.append(data[stroff + off:end].decode())
    return interp, names


def test_release_binary_is_static_stripped_and_at_most_400_kib(env):
    assert os.path.exists(BINARY), '%s: run make relay first' % BINARY
    interp, sections = elf_facts(BINARY)
    assert not interp, './relay asks for a dynamic loader: not the static build'
    assert '.symtab' not in sections, './relay has a symbol table: not stripped as make relay strips it'
    assert '.text' in sections and '.rodata' in sections, sections
    size = os.path.getsize(BINARY)
    assert size <= LIMIT, ('./relay is %d bytes (%.1f KiB), over the 400 KiB target by %d bytes; '
                           'sh tools/sizes.sh shows what each object adds'
                           % (size, size / 1024.0, size - LIMIT))
