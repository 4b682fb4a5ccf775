"""The API server's CA, serving certificate and bearer token, kept in its data dir.

Files (created once, reused on later starts so clients' kubeconfigs stay valid):
``ca.crt``/``ca.key``, ``apiserver.crt``/``apiserver.key`` (signed by the CA, with the SANs
clients use to reach the API: loopback, the underlay gateway, the ``kubernetes`` Service IP
and its DNS names), ``token`` (a random bearer token) and ``sa.key`` (the RSA key that signs
service-account tokens, kubeadm's file of the same name). Keys are written mode 0600.
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from svcnet.api.ranges import KUBERNETES_SERVICE_IP, UNDERLAY_GATEWAY
from svcnet.apiserver.satoken import generate_signing_key, signing_key_pem
from svcnet.util.files import write_private

DEFAULT_IP_SANS: tuple[str, ...] = ("127.0.0.1", UNDERLAY_GATEWAY, KUBERNETES_SERVICE_IP)
DEFAULT_DNS_SANS: tuple[str, ...] = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
_VALIDITY = datetime.timedelta(days=3650)


@dataclass(frozen=True)
class Credentials:
    ca_cert: Path
    ca_key: Path
    cert: Path
    key: Path
    token: str
    sa_key: Path

    def ca_pem(self) -> bytes:
        return self.ca_cert.read_bytes()


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _make_ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "svcnet-ca")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _make_serving(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    ip_sans: tuple[str, ...],
    dns_sans: tuple[str, ...],
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_sans]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_sans]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _cert_has_sans(path: Path, ip_sans: tuple[str, ...], dns_sans: tuple[str, ...]) -> bool:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    have_ips = {str(ip) for ip in ext.get_values_for_type(x509.IPAddress)}
    have_dns = set(ext.get_values_for_type(x509.DNSName))
    return set(ip_sans) <= have_ips and set(dns_sans) <= have_dns


def ensure_credentials(
    data_dir: Path,
    extra_ip_sans: tuple[str, ...] = (),
    extra_dns_sans: tuple[str, ...] = (),
) -> Credentials:
    """Load the CA, serving certificate and token from ``data_dir``, creating what is missing.

    The serving certificate is re-issued (by the same CA) when it lacks a requested SAN, so a
    new advertise address does not invalidate existing kubeconfigs.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    ip_sans = tuple(dict.fromkeys(DEFAULT_IP_SANS + extra_ip_sans))
    dns_sans = tuple(dict.fromkeys(DEFAULT_DNS_SANS + extra_dns_sans))
    ca_cert_p, ca_key_p = data_dir / "ca.crt", data_dir / "ca.key"
    cert_p, key_p = data_dir / "apiserver.crt", data_dir / "apiserver.key"
    token_p = data_dir / "token"

    if ca_cert_p.exists() and ca_key_p.exists():
        loaded = serialization.load_pem_private_key(ca_key_p.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{ca_key_p}: not an EC private key")
        ca_key = loaded
        ca_cert = x509.load_pem_x509_certificate(ca_cert_p.read_bytes())
    else:
        ca_key, ca_cert = _make_ca()
        write_private(ca_key_p, _key_pem(ca_key))
        ca_cert_p.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        cert_p.unlink(missing_ok=True)

    if not (cert_p.exists() and key_p.exists() and _cert_has_sans(cert_p, ip_sans, dns_sans)):
        key, cert = _make_serving(ca_key, ca_cert, ip_sans, dns_sans)
        write_private(key_p, _key_pem(key))
        cert_p.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    if token_p.exists() and token_p.read_text().strip():
        token = token_p.read_text().strip()
    else:
        token = secrets.token_urlsafe(32)
        write_private(token_p, (token + "\n").encode())
    sa_key_p = data_dir / "sa.key"
    if not sa_key_p.exists():
        write_private(sa_key_p, signing_key_pem(generate_signing_key()))
    return Credentials(ca_cert_p, ca_key_p, cert_p, key_p, token, sa_key_p)
