"""Portable PDBs in a symbol package (.snupkg), as a symbol server serves them to Visual Studio's
debugger (the Simple Symbol Query Protocol, GitLab's `symbolfiles` route):

    GET …/symbolfiles/<file>.pdb/<signature>/<file>.pdb   with   SymbolChecksum: SHA256:<hex>

- `signature`: the PDB id's GUID in .NET's "N" format (the first three fields little-endian)
  followed by `FFFFFFFF` (the age every portable PDB has), compared without regard to case;
- the checksum: SHA-256 over the PDB with its 20-byte id zeroed (the Portable PDB spec's PDB
  checksum, which the debugger reads from the assembly's debug directory).

Pure: bytes in, identity out. Anything that is not a portable PDB (a Windows PDB, garbage) has
no identity and is skipped, as GitLab skips it.
"""

import hashlib
import struct
import uuid
from dataclasses import dataclass

METADATA_SIGNATURE = b"BSJB"
PDB_STREAM = b"#Pdb"
PDB_ID_SIZE = 20
PORTABLE_AGE = "FFFFFFFF"
# Larger PDBs in a symbol package are not served (a portable PDB is rarely over a few MiB).
MAX_PDB_SIZE = 256 * 1024 * 1024


@dataclass(frozen=True)
class SymbolFile:
    entry: str  # the member's path in the .snupkg
    file_name: str  # its base name, lower-cased (the debugger's key)
    signature: str
    checksum: str
    size: int


def pdb_identity(data):
    """(signature, checksum) of a portable PDB's bytes, or None when they are not one."""
    if data[:4] != METADATA_SIGNATURE:
        return None
    try:
        (version_length,) = struct.unpack_from("<I", data, 12)
        offset = 16 + version_length
        _flags, streams = struct.unpack_from("<HH", data, offset)
        offset += 4
        for _ in range(streams):
            stream_offset, size = struct.unpack_from("<II", data, offset)
            offset += 8
            end = data.index(b"\0", offset, offset + 32)
            name = data[offset:end]
            offset += (len(name) + 1 + 3) & ~3  # the name, its NUL, padded to 4 bytes
            if name == PDB_STREAM:
                return _identity(data, stream_offset, size)
    except (struct.error, ValueError):
        return None
    return None


def _identity(data, stream_offset, size):
    if size < PDB_ID_SIZE or stream_offset + PDB_ID_SIZE > len(data):
        return None
    pdb_id = data[stream_offset : stream_offset + PDB_ID_SIZE]
    signature = uuid.UUID(bytes_le=pdb_id[:16]).hex.upper() + PORTABLE_AGE
    zeroed = hashlib.sha256()
    zeroed.update(data[:stream_offset])
    zeroed.update(b"\0" * PDB_ID_SIZE)
    zeroed.update(data[stream_offset + PDB_ID_SIZE :])
    return signature, zeroed.hexdigest()


def requested_checksums(header):
    """The SHA-256 checksums of a `SymbolChecksum` header (`SHA256:<hex>`, several separated by
    `;`), lower-cased; other algorithms are ignored."""
    found = []
    for part in (header or "").split(";"):
        algorithm, _, value = part.strip().partition(":")
        value = value.strip().lower()
        if algorithm.strip().upper() == "SHA256" and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
            found.append(value)
    return found
