"""The server name in a QUIC v1 client Initial (RFC 9000 §17.2.2), whose protection
anyone can remove: the keys come from the packet's own connection id (RFC 9001 §5)."""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from wirewarden.domain.classify.tls import Malformed, Reader, Truncated, client_hello_name

VERSION_1 = 0x00000001
_INITIAL_SALT = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")
_LONG_HEADER, _FIXED_BIT, _TYPE_BITS = 0x80, 0x40, 0x30
_MAX_CID = 20
_SAMPLE = 16
_PADDING, _PING, _ACK, _ACK_ECN, _CRYPTO = 0x00, 0x01, 0x02, 0x03, 0x06


def is_initial(datagram: bytes) -> bool:
    """A QUIC v1 long-header Initial packet, before any decryption."""
    return (
        len(datagram) >= 7
        and datagram[0] & (_LONG_HEADER | _FIXED_BIT | _TYPE_BITS) == _LONG_HEADER | _FIXED_BIT
        and int.from_bytes(datagram[1:5], "big") == VERSION_1
    )


def initial_server_name(datagram: bytes) -> str | None:
    """The SNI of the ClientHello in a client's first Initial; None when the packet does
    not hold one we can read (not QUIC v1, not decryptable, hello split further on)."""
    if not is_initial(datagram):
        return None
    try:
        crypto = _crypto_stream(_decrypt(datagram))
        return client_hello_name(crypto)
    except (Truncated, Malformed, ValueError):
        return None


def _decrypt(datagram: bytes) -> bytes:
    reader = Reader(datagram)
    reader.skip(5)
    dcid = reader.vector(1)
    if len(dcid) > _MAX_CID:
        raise Malformed
    scid = reader.vector(1)
    if len(scid) > _MAX_CID:
        raise Malformed
    reader.take(_varint(reader))  # token
    length = _varint(reader)
    pn_offset = reader.at
    if pn_offset + length > len(datagram) or length < 4 + _SAMPLE:
        raise Malformed
    key, iv, hp = _client_keys(dcid)
    sample = datagram[pn_offset + 4 : pn_offset + 4 + _SAMPLE]
    # RFC 9001 §5.4.3 defines the header protection mask as AES-ECB of one block.
    encryptor = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()  # noqa: S305
    mask = encryptor.update(sample) + encryptor.finalize()
    first = datagram[0] ^ (mask[0] & 0x0F)
    pn_length = (first & 0x03) + 1
    protected = datagram[pn_offset : pn_offset + pn_length]
    pn = bytes(b ^ m for b, m in zip(protected, mask[1 : 1 + pn_length], strict=True))
    header = bytes([first]) + datagram[1:pn_offset] + pn
    padded = int.from_bytes(pn, "big").to_bytes(len(iv), "big")
    nonce = bytes(a ^ b for a, b in zip(iv, padded, strict=True))
    sealed = datagram[pn_offset + pn_length : pn_offset + length]
    try:
        return AESGCM(key).decrypt(nonce, sealed, header)
    except InvalidTag as exc:  # not a client's Initial for this connection id
        raise Malformed from exc


def _client_keys(dcid: bytes) -> tuple[bytes, bytes, bytes]:
    extract = hmac.HMAC(_INITIAL_SALT, hashes.SHA256())
    extract.update(dcid)
    client = _expand_label(extract.finalize(), b"client in", 32)
    return (
        _expand_label(client, b"quic key", 16),
        _expand_label(client, b"quic iv", 12),
        _expand_label(client, b"quic hp", 16),
    )


def _expand_label(secret: bytes, label: bytes, length: int) -> bytes:
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + b"\x00"
    return HKDFExpand(hashes.SHA256(), length, info).derive(secret)


def _varint(reader: Reader) -> int:
    first = reader.number(1)
    size = 1 << (first >> 6)
    value = first & 0x3F
    for byte in reader.take(size - 1):
        value = value << 8 | byte
    return value


def _crypto_stream(payload: bytes) -> bytes:
    """The CRYPTO frames' bytes from offset 0 on, as far as they run without a gap
    (clients such as Chrome scatter the hello over out-of-order frames)."""
    reader, pieces = Reader(payload), dict[int, bytes]()
    while reader.at < len(payload):
        kind = _varint(reader)
        if kind in (_PADDING, _PING):
            continue
        if kind == _CRYPTO:
            offset = _varint(reader)
            pieces[offset] = reader.take(_varint(reader))
        elif kind in (_ACK, _ACK_ECN):
            _skip_ack(reader, ecn=kind == _ACK_ECN)
        else:
            break  # a frame an Initial's hello does not need: stop reading
    stream, at = bytearray(), 0
    while pieces.get(at):
        piece = pieces.pop(at)
        stream += piece
        at += len(piece)
    return bytes(stream)


def _skip_ack(reader: Reader, ecn: bool) -> None:
    _varint(reader)  # largest acknowledged
    _varint(reader)  # delay
    ranges = _varint(reader)
    _varint(reader)  # first range
    for _ in range(ranges * 2):
        _varint(reader)
    for _ in range(3 if ecn else 0):
        _varint(reader)
