#!/usr/bin/env python3
"""Recomputes the datagram known answers pinned in tests/crypto/test_datagram.cpp without libsodium
or any Starling code: hashlib's BLAKE2b, the `cryptography` package's X25519, Ed25519 and
ChaCha20-Poly1305, and HChaCha20 written out here. Keys are those of tests/crypto/datagram_fixture.hpp.

    python3 tools/scripts/datagram_vectors.py
"""
import hashlib
import struct

from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def counting(first, n):
    return bytes((first + i) & 0xFF for i in range(n))


def raw_public(key):
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def hchacha20(key, nonce16):
    def rotl(v, c):
        return ((v << c) & 0xFFFFFFFF) | (v >> (32 - c))

    def quarter(s, a, b, c, d):
        s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = rotl(s[d] ^ s[a], 16)
        s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = rotl(s[b] ^ s[c], 12)
        s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = rotl(s[d] ^ s[a], 8)
        s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = rotl(s[b] ^ s[c], 7)

    s = list(struct.unpack("<4I", b"expand 32-byte k") + struct.unpack("<8I", key)
             + struct.unpack("<4I", nonce16))
    for _ in range(10):
        quarter(s, 0, 4, 8, 12); quarter(s, 1, 5, 9, 13)
        quarter(s, 2, 6, 10, 14); quarter(s, 3, 7, 11, 15)
        quarter(s, 0, 5, 10, 15); quarter(s, 1, 6, 11, 12)
        quarter(s, 2, 7, 8, 13); quarter(s, 3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def xchacha20poly1305_seal(key, nonce24, plaintext, ad):
    subkey = hchacha20(key, nonce24[:16])
    return ChaCha20Poly1305(subkey).encrypt(b"\0\0\0\0" + nonce24[16:], plaintext, ad)


class Device:
    def __init__(self, first):
        self.id = counting(first, 16)
        self.kx = x25519.X25519PrivateKey.from_private_bytes(counting(first + 1, 32))
        self.kx_public = raw_public(self.kx)
        self.sign = ed25519.Ed25519PrivateKey.from_private_bytes(counting(first + 2, 32))


CLUSTER = counting(0xC0, 16)
NETWORK_KEY = counting(0x20, 32)
EPOCH = 7
COUNTER = (3 << 32) | 5


def cluster_tag():
    return hashlib.blake2b(b"starling cluster tag v1" + CLUSTER, digest_size=32).digest()[:8]


def keyed(parts):
    return hashlib.blake2b(b"".join(parts), digest_size=32, key=NETWORK_KEY).digest()


def pair_key(shared, sender, receiver):
    return keyed([b"starling datagram v1 pair key", CLUSTER, struct.pack("<I", EPOCH), sender.id,
                  receiver.id, sender.kx_public, receiver.kx_public, shared])


def cluster_key():
    return keyed([b"starling datagram v1 cluster key", CLUSTER, struct.pack("<I", EPOCH)])


def header(kind, sender, counter):
    return (bytes([0xD1, kind]) + cluster_tag() + struct.pack("<I", EPOCH) + sender.id
            + struct.pack("<Q", counter))


def main():
    a, b = Device(0xA0), Device(0xB0)
    shared = a.kx.exchange(x25519.X25519PublicKey.from_public_bytes(b.kx_public))
    a_to_b, b_to_a = pair_key(shared, a, b), pair_key(shared, b, a)
    print("cluster tag        ", cluster_tag().hex())
    print("pair key a->b      ", a_to_b.hex())
    print("pair key b->a      ", b_to_a.hex())
    print("cluster key        ", cluster_key().hex())

    h = header(1, a, COUNTER)
    print("to_peer 'hi'       ", (h + xchacha20poly1305_seal(a_to_b, h[14:], b"hi", h)).hex())
    h = header(2, a, COUNTER + 1)
    signature = a.sign.sign(b"starling datagram v1 cluster signature" + h + b"hi")
    sealed = xchacha20poly1305_seal(cluster_key(), h[14:], b"hi" + signature, h)
    print("to_cluster 'hi'    ", (h + sealed).hex())


if __name__ == "__main__":
    main()
