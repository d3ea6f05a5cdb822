"""Cryptographic protection of xDLMS APDUs with AES-GCM (Green Book 9.2.7.2).

Every ciphered APDU ends in ``ciphered-content`` = security header (SC ‖ IC) ‖ information ‖
optional tag. Green Book 9.2.7.2.4, Table 39 (use of the fields):

    IV   = system title of the sender (8) ‖ invocation counter (4, big-endian)
    SC auth+enc  AAD = SC ‖ AK           information = ciphertext   tag 12 bytes
    SC auth only AAD = SC ‖ AK ‖ plain   information = plaintext     tag 12 bytes
    SC enc only  no AAD                  information = ciphertext   no tag

general-ciphering (0xDD) also authenticates its header: the AAD gains transaction-id ..
other-information as encoded (with length octets) after the AK, as for general-signing.

Encryption-only is AES-GCM without the tag, i.e. AES-CTR started at the GCM counter block
J0 + 1 = IV ‖ 00000002 (NIST SP 800-38D 7.1): identical keystream, no GHASH needed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from edge_agent.dlms.errors import (
    AuthenticationError,
    DecodeError,
    EncodeError,
    MissingKeyError,
    SecurityError,
    TruncatedError,
)
from edge_agent.dlms.secret import Secret
from edge_agent.dlms.security import crypto
from edge_agent.dlms.security._length import decode_length, octet_string, take, take_octet_string
from edge_agent.dlms.security.control import CipherKeys, SecurityControl
from edge_agent.dlms.security.tags import CIPHERED, Form, ciphered_tag
from edge_agent.dlms.system_title import SystemTitle

if TYPE_CHECKING:
    from edge_agent.dlms.security.header import GeneralCipheringHeader

# The general-ciphering header (edge_agent.dlms.security.header, five classes) is imported
# where one is read or met: glo- and ded- APDUs, what meters mostly send, do without it.

TAG_LENGTH = 12
_HEADER = struct.Struct(">BI")  # SC, invocation counter
MAX_INVOCATION_COUNTER = 0xFFFFFFFF

LIKELY_CAUSES = "wrong AK or EK, wrong system title, or invocation counter not the one used"


@dataclass(frozen=True, slots=True)
class CipheredApdu:
    """A ciphered APDU taken apart, not yet deciphered (enough to say which keys it needs)."""

    tag: int
    sc: SecurityControl
    invocation_counter: int
    information: bytes  # ciphertext, or the plaintext of an authentication-only APDU
    auth_tag: bytes  # 12 bytes, or b"" when SC has no authentication
    system_title: bytes | None = None  # carried by general-(glo|ded)-ciphering / general-ciphering
    header: GeneralCipheringHeader | None = None

    @property
    def form(self) -> Form:
        return CIPHERED[self.tag][0]

    @property
    def name(self) -> str:
        return CIPHERED[self.tag][1]

    def encode(self) -> bytes:
        content = (
            _HEADER.pack(self.sc.byte, self.invocation_counter) + self.information + self.auth_tag
        )
        form = self.form
        if form is Form.GENERAL:
            assert self.header is not None
            prefix = self.header.encode()
        elif form in (Form.GENERAL_GLO, Form.GENERAL_DED):
            prefix = octet_string(self.system_title or b"")
        else:
            prefix = b""
        return bytes((self.tag,)) + prefix + octet_string(content)

    @classmethod
    def decode(cls, buf: bytes | memoryview, offset: int = 0) -> tuple[CipheredApdu, int]:
        """Return the APDU and the offset after it."""
        if offset >= len(buf):
            raise TruncatedError("ciphered APDU expected, input is empty")
        tag = buf[offset]
        entry = CIPHERED.get(tag)
        if entry is None:
            raise DecodeError(
                f"tag 0x{tag:02X} is not a ciphered APDU (expected glo-/ded- service tags, "
                "0xDB general-glo-, 0xDC general-ded- or 0xDD general-ciphering)"
            )
        form, name = entry
        offset += 1
        system_title = header = None
        if form is Form.GENERAL:
            from edge_agent.dlms.security.header import GeneralCipheringHeader

            header, offset = GeneralCipheringHeader.decode(buf, offset)
            system_title = header.fields.originator_system_title
        elif form in (Form.GENERAL_GLO, Form.GENERAL_DED):
            system_title, offset = take_octet_string(buf, offset, f"{name} system-title")
        size, offset = decode_length(buf, offset)
        content, end = take(buf, offset, size, f"{name} ciphered-content")
        if size < _HEADER.size:
            raise TruncatedError(
                f"{name}: ciphered-content of {size} bytes, at least 5 (SC and invocation counter) expected"
            )
        sc_byte, invocation_counter = _HEADER.unpack_from(content, 0)
        try:
            sc = SecurityControl.decode(sc_byte)
        except DecodeError as exc:
            raise DecodeError(f"{name}: security control 0x{sc_byte:02X}: {exc}") from None
        tag_length = TAG_LENGTH if sc.authentication else 0
        if size < _HEADER.size + tag_length:
            raise TruncatedError(
                f"{name}: ciphered-content of {size} bytes cannot hold the SC, IC and a {tag_length}-byte tag"
            )
        split = size - tag_length
        return (
            cls(
                tag,
                sc,
                invocation_counter,
                content[_HEADER.size : split],
                content[split:],
                system_title,
                header,
            ),
            end,
        )

    def keys_needed(self) -> str:
        """'needs the encryption key (EK) and ...' for decode output and error messages."""
        if self.header is not None:  # the key-info of general-ciphering decides
            return self._keys_needed()
        # Otherwise the tag, the SC byte and whether the system title is carried do: each
        # text is made once (decode shows it for every ciphered APDU of a capture).
        key = (self.tag, self.sc.byte, self.system_title is None)
        text = _KEYS_NEEDED.get(key)
        if text is None:
            text = _KEYS_NEEDED[key] = self._keys_needed()
        return text

    def _keys_needed(self) -> str:
        key_info = self.header.key_info if self.header is not None else None
        if self.form in (Form.DED, Form.GENERAL_DED):
            needs = "the dedicated key of the association" + (
                " and the AK" if self.sc.authentication else ""
            )
        elif _is_key_info(key_info, "WrappedKey"):
            needs = "the master key (KEK) to unwrap the content key" + (
                " and the AK" if self.sc.authentication else ""
            )
        elif _is_key_info(key_info, "AgreedKey"):
            needs = "a key agreed by ECDH (key agreement keys)" + (
                " and the AK" if self.sc.authentication else ""
            )
        else:
            needs = self.sc.keys_needed()
        if self.system_title is None:
            needs += ", and the sender's system title (this APDU does not carry it)"
        return f"{self.name} with {self.sc.describe()} needs {needs}"


_KEYS_NEEDED: dict[tuple[int, int, bool], str] = {}  # (tag, SC byte, no system title) -> text


@dataclass(frozen=True, slots=True)
class Unprotected:
    """A deciphered and verified APDU."""

    plaintext: bytes
    sc: SecurityControl
    system_title: bytes
    invocation_counter: int
    form: Form
    tag_name: str
    key_id: (
        str  # which key deciphered it ("ek", "broadcast_ek", "dedicated_ek", "wrapped", "agreed")
    )
    header: GeneralCipheringHeader | None = None


def _is_key_info(key_info: object, kind: str) -> bool:
    """Whether ``key_info`` (of a general-ciphering header, or None) is of class ``kind``
    of the header module, which is loaded wherever a header exists."""
    if key_info is None:
        return False
    from edge_agent.dlms.security import header

    cls: type = getattr(header, kind)
    return isinstance(key_info, cls)


def _iv(system_title: bytes, invocation_counter: int) -> bytes:
    return system_title + invocation_counter.to_bytes(4, "big")


def _aad(sc: SecurityControl, ak: Secret | None, header: GeneralCipheringHeader | None) -> bytes:
    if not sc.authentication:
        return b""
    assert ak is not None
    fields = header.fields.encode() if header is not None else b""
    return sc.encode() + ak.reveal() + fields


def _select_key(
    form: Form,
    sc: SecurityControl,
    keys: CipherKeys,
    header: GeneralCipheringHeader | None,
    content_key: Secret | None,
    what: str,
) -> tuple[Secret, str]:
    """The block cipher key of an APDU (Green Book 9.2.3.3, key-info of general-ciphering)."""
    key_info = header.key_info if header is not None else None
    if content_key is not None:
        return content_key, "agreed" if _is_key_info(key_info, "AgreedKey") else "given"
    if form in (Form.DED, Form.GENERAL_DED):
        return keys.require(
            "dedicated_ek", f"{what} is ciphered with the dedicated key of the association"
        ), "dedicated_ek"
    broadcast = sc.broadcast
    if key_info is not None:
        from edge_agent.dlms.security.header import (
            GLOBAL_BROADCAST_KEY_ID,
            GLOBAL_UNICAST_KEY_ID,
            AgreedKey,
            IdentifiedKey,
            WrappedKey,
        )

        if isinstance(key_info, WrappedKey):
            from edge_agent.dlms.security.keywrap import unwrap

            kek = keys.require(
                "kek", f"{what} carries a content key wrapped with the master key (KEK)")
            return unwrap(kek, key_info.key_ciphered_data), "wrapped"
        if isinstance(key_info, AgreedKey):
            raise MissingKeyError(
                f"{what} uses an agreed key (key-parameters {key_info.key_parameters.hex()}): "
                "derive it with edge_agent.dlms.security.agreement and pass it as content_key"
            )
        if isinstance(key_info, IdentifiedKey):
            if key_info.key_id not in (GLOBAL_UNICAST_KEY_ID, GLOBAL_BROADCAST_KEY_ID):
                raise DecodeError(
                    f"{what}: identified key-id {key_info.key_id}, expected 0 (unicast) or 1 "
                    "(broadcast)"
                )
            broadcast = key_info.key_id == GLOBAL_BROADCAST_KEY_ID
    if broadcast:
        return keys.require(
            "broadcast_ek", f"{what} is ciphered with the global broadcast key"
        ), "broadcast_ek"
    if keys.ek is not None:  # the common case: no message to word
        return keys.ek, "ek"
    return keys.require(
        "ek", f"{what} is ciphered with the global unicast key; {sc.keys_needed()} are needed"
    ), "ek"


def _require_ak(sc: SecurityControl, keys: CipherKeys, what: str) -> Secret | None:
    if not sc.authentication:
        return None
    if keys.ak is not None:  # the common case: no message to word
        return keys.ak
    return keys.require("ak", f"{what} has {sc.describe()}, whose tag covers the AK")


def _check_usable(sc: SecurityControl, what: str) -> None:
    if sc.compression:
        raise SecurityError(
            f"{what}: {sc.describe()}: compressed APDUs (ITU-T V.44, SC bit 0x80) are not supported"
        )
    if not sc.protected:
        raise SecurityError(
            f"{what}: {sc.describe()}: a ciphered APDU must be authenticated and/or encrypted"
        )


def _gcm_encrypt(
    key: Secret, iv: bytes, aad: bytes, plaintext: bytes, sc: SecurityControl
) -> tuple[bytes, bytes]:
    """Return (information, tag) for the three protection kinds."""
    if not sc.authentication:
        encryptor = crypto.Cipher(
            crypto.algorithms.AES(key.reveal()), crypto.modes.CTR(iv + b"\x00\x00\x00\x02")
        ).encryptor()
        return encryptor.update(plaintext) + encryptor.finalize(), b""
    encryptor = crypto.Cipher(crypto.algorithms.AES(key.reveal()), crypto.modes.GCM(iv)).encryptor()
    if sc.encryption:
        encryptor.authenticate_additional_data(aad)
        information = encryptor.update(plaintext) + encryptor.finalize()
    else:
        encryptor.authenticate_additional_data(aad + plaintext)
        encryptor.finalize()
        information = plaintext
    return information, encryptor.tag[:TAG_LENGTH]


def _gcm_decrypt(key: Secret, iv: bytes, aad: bytes, apdu: CipheredApdu) -> bytes | None:
    """Plaintext, or None when the tag does not verify."""
    sc = apdu.sc
    if not sc.authentication:
        decryptor = crypto.Cipher(
            crypto.algorithms.AES(key.reveal()), crypto.modes.CTR(iv + b"\x00\x00\x00\x02")
        ).decryptor()
        return decryptor.update(apdu.information) + decryptor.finalize()
    if not sc.encryption:
        import hmac  # here: authentication-only APDUs alone compare a tag themselves

        cipher = crypto.Cipher(crypto.algorithms.AES(key.reveal()), crypto.modes.GCM(iv))
        encryptor = cipher.encryptor()
        encryptor.authenticate_additional_data(aad + apdu.information)
        encryptor.finalize()
        return (
            apdu.information
            if hmac.compare_digest(encryptor.tag[:TAG_LENGTH], apdu.auth_tag)
            else None
        )
    decryptor = crypto.Cipher(
        crypto.algorithms.AES(key.reveal()),
        crypto.modes.GCM(iv, apdu.auth_tag, min_tag_length=TAG_LENGTH),
    ).decryptor()
    decryptor.authenticate_additional_data(aad)
    plaintext = decryptor.update(apdu.information)
    try:
        return plaintext + decryptor.finalize()
    except crypto.exceptions.InvalidTag:
        return None


def protect(
    plain_apdu: bytes,
    *,
    sc: SecurityControl,
    keys: CipherKeys,
    system_title: bytes,
    invocation_counter: int,
    form: Form = Form.GLO,
    header: GeneralCipheringHeader | None = None,
    content_key: Secret | None = None,
) -> bytes:
    """crypto.Cipher ``plain_apdu`` as ``form``; ``system_title`` is the sender's (ours).

    ``header`` is required for general-ciphering; its originator system title must be
    ``system_title``. ``content_key`` is the key of an agreed-key general-ciphering.
    """
    if not plain_apdu:
        raise EncodeError("cannot protect an empty APDU")
    system_title = SystemTitle(system_title, error=EncodeError)
    if not 0 <= invocation_counter <= MAX_INVOCATION_COUNTER:
        raise EncodeError(f"invocation counter {invocation_counter} outside 0..2**32-1")
    tag = ciphered_tag(plain_apdu[0], form)
    what = CIPHERED[tag][1]
    _check_usable(sc, what)
    keys.check_suite(sc.suite)
    if form is Form.GENERAL:
        if header is None:
            raise EncodeError(
                "general-ciphering needs a header (transaction-id, system titles, key-info)"
            )
        if header.fields.originator_system_title != system_title:
            raise EncodeError(
                "general-ciphering: originator-system-title must be the sender's system title"
            )
    else:
        header = None
    key, _ = _select_key(form, sc, keys, header, content_key, what)
    ak = _require_ak(sc, keys, what)
    information, auth_tag = _gcm_encrypt(
        key, _iv(system_title, invocation_counter), _aad(sc, ak, header), plain_apdu, sc
    )
    carried = system_title if form in (Form.GENERAL_GLO, Form.GENERAL_DED, Form.GENERAL) else None
    return CipheredApdu(
        tag, sc, invocation_counter, information, auth_tag, carried, header
    ).encode()


def decipher(
    apdu: CipheredApdu,
    keys: CipherKeys,
    system_title: bytes | None = None,
    content_key: Secret | None = None,
) -> Unprotected:
    """Verify and decipher; ``system_title`` is the sender's, needed for glo-/ded- APDUs."""
    plaintext, sender, key_id = _open(apdu, keys, system_title, content_key)
    return Unprotected(
        plaintext, apdu.sc, sender, apdu.invocation_counter, apdu.form, apdu.name, key_id,
        apdu.header
    )


def decipher_plaintext(
    apdu: CipheredApdu,
    keys: CipherKeys,
    system_title: bytes | None = None,
) -> tuple[bytes, str]:
    """What :func:`decipher` checks and raises, giving the plaintext and the id of the key
    that deciphered it without building the :class:`Unprotected` value: for a reader of many
    APDUs (``dlms-edge decode``) that needs no more."""
    plaintext, _, key_id = _open(apdu, keys, system_title, None)
    return plaintext, key_id


def _open(
    apdu: CipheredApdu,
    keys: CipherKeys,
    system_title: bytes | None,
    content_key: Secret | None,
) -> tuple[bytes, SystemTitle, str]:
    """Plaintext, sender's system title and key id of a verified APDU (Green Book 9.2.7.2)."""
    what = apdu.name
    _check_usable(apdu.sc, what)
    sender = apdu.system_title if apdu.system_title is not None else system_title
    if sender is None:
        raise MissingKeyError(
            f"{what} does not carry the sender's system title, which the IV needs: give the peer's "
            "system title (AARE responding-AP-title / AARQ calling-AP-title, or the system_title "
            "setting)"
        )
    if not isinstance(sender, SystemTitle):
        sender = SystemTitle(sender, what=f"{what}: system title")
    keys.check_suite(apdu.sc.suite)
    key, key_id = _select_key(apdu.form, apdu.sc, keys, apdu.header, content_key, what)
    ak = _require_ak(apdu.sc, keys, what)
    plaintext = _gcm_decrypt(
        key, _iv(sender, apdu.invocation_counter), _aad(apdu.sc, ak, apdu.header), apdu
    )
    if plaintext is None:
        raise AuthenticationError(
            f"{what}: authentication tag does not match ({apdu.sc.describe()}, invocation counter "
            f"{apdu.invocation_counter}, system title {sender.hex().upper()}): likely {LIKELY_CAUSES}"
        )
    return plaintext, sender, key_id


def unprotect(
    apdu: bytes | memoryview,
    keys: CipherKeys,
    system_title: bytes | None = None,
    *,
    content_key: Secret | None = None,
    guard: ReceiveCounterGuardLike | None = None,
) -> Unprotected:
    """Decode, verify and decipher a whole ciphered APDU.

    With ``guard``, the invocation counter is checked before and recorded only after the tag
    verified, so neither a replay nor a forgery changes the guard or yields plaintext.
    """
    ciphered, end = CipheredApdu.decode(apdu, 0)
    if end != len(apdu):
        raise DecodeError(
            f"{ciphered.name}: {len(apdu) - end} bytes after the end of ciphered-content "
            f"(APDU of {len(apdu)} bytes, ciphered-content ends at {end})"
        )
    sender = ciphered.system_title if ciphered.system_title is not None else system_title
    if guard is not None and sender is not None:
        guard.check(sender, _guard_key_id(ciphered), ciphered.invocation_counter)
    result = decipher(ciphered, keys, system_title, content_key)
    if guard is not None:
        guard.accept(result.system_title, _guard_key_id(ciphered), result.invocation_counter)
    return result


def _guard_key_id(apdu: CipheredApdu) -> str:
    if apdu.form in (Form.DED, Form.GENERAL_DED):
        return "dedicated_ek"
    return "broadcast_ek" if apdu.sc.broadcast else "ek"


class ReceiveCounterGuardLike(Protocol):
    """What :func:`unprotect` needs of :class:`~edge_agent.dlms.security.replay.ReceiveCounterGuard`."""

    def check(self, system_title: bytes, key_id: str, invocation_counter: int) -> None: ...

    def accept(self, system_title: bytes, key_id: str, invocation_counter: int) -> None: ...
