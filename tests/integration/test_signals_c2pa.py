"""The CAWG training-and-data-mining assertion, embedded in a real C2PA manifest.

A WAV file is signed with `c2pa-python` (the CAI's c2pa-rs) under a test certificate
chain made here, then read back with c2pa's own Reader: the assertion is the one the
per-content route serves.
"""

from __future__ import annotations

import io
import wave
from datetime import UTC, datetime, timedelta

import c2pa
import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from services.bootstrap import Services

pytestmark = pytest.mark.timeout(120)


def certificate_chain() -> tuple[bytes, bytes]:
    """Return (leaf + CA certificates in PEM, the leaf's private key in PEM), ES256."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Consent Ledger test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, "Consent Ledger test signer"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Consent Ledger tests"),
                ]
            )
        )
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    chain = leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(
        serialization.Encoding.PEM
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return chain, pem


def silent_wav() -> bytes:
    """Return a tenth of a second of 8 kHz mono silence as WAV."""
    out = io.BytesIO()
    with wave.open(out, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(b"\x00\x00" * 800)
    return out.getvalue()


def test_the_cawg_assertion_embedded_in_a_c2pa_manifest_reads_back_unchanged(
    services: Services,
) -> None:
    services.ledger.grant("artist-1", "data-mining", party="*", content_ids=["track-1"])
    services.ledger.revoke("artist-1", "ai-generative-training", party="*")
    assertion = services.signals.page("artist-1", "track-1").signals.cawg_assertion()
    chain, key = certificate_chain()
    signer = c2pa.Signer.from_info(
        c2pa.C2paSignerInfo(
            alg=b"es256",
            sign_cert=chain,
            private_key=key,
            ta_url=None,
        )
    )
    manifest = {
        "claim_generator_info": [{"name": "consent-ledger-tests", "version": "1"}],
        "title": "track-1.wav",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": (
                                "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"
                            ),
                        }
                    ]
                },
            },
            assertion,
        ],
    }
    builder = c2pa.Builder(orjson.dumps(manifest).decode())
    source, signed = io.BytesIO(silent_wav()), io.BytesIO()
    builder.sign(signer, "audio/wav", source, signed)
    signed.seek(0)
    reader = c2pa.Reader("audio/wav", signed)
    store = orjson.loads(reader.json())
    active = store["manifests"][store["active_manifest"]]
    (found,) = [a for a in active["assertions"] if a["label"] == "cawg.training-mining"]
    assert found["data"] == assertion["data"]
    entries = found["data"]["entries"]
    assert entries["cawg.data_mining"] == {"use": "allowed"}
    assert entries["cawg.ai_generative_training"] == {"use": "notAllowed"}
