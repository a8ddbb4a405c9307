"""Certificates for a site: a CA, the brokers' server certificates, the hub's
and each device's client certificate (`anju certs ...`, docs/forwarding.md).

Files are PEM: `<name>.pem` (certificate) and `<name>.key` (private key, mode
0600, unencrypted so the hub and Mosquitto can start unattended). A client
certificate's common name is its identity: with Mosquitto's
`use_identity_as_username true` it becomes the MQTT username the ACLs match.
This module never overwrites an existing key and never prints key material.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


class CertError(Exception):
    """A certificate could not be made (existing file, missing CA, bad name)."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _write(path: Path, data: bytes, private: bool) -> None:
    if private and path.exists():
        raise CertError(f"{path} exists; refusing to overwrite a private key")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(path, flags, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    if private:
        os.chmod(path, 0o600)


def _save(out: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    _write(out / f"{name}.key", key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()), private=True)
    _write(out / f"{name}.pem", cert.public_bytes(serialization.Encoding.PEM), private=False)
    return out / f"{name}.pem"


def _load_ca(out: Path, ca: str):
    try:
        cert = x509.load_pem_x509_certificate((out / f"{ca}.pem").read_bytes())
        key = serialization.load_pem_private_key((out / f"{ca}.key").read_bytes(), None)
    except (OSError, ValueError) as exc:
        raise CertError(f"cannot load the CA '{ca}' from {out}: {exc}") from exc
    return cert, key


def _builder(cn: str, issuer: x509.Name, days: int, pub) -> x509.CertificateBuilder:
    if not cn or "/" in cn or "+" in cn or "#" in cn:
        raise CertError(f"'{cn}' is not a usable certificate name")
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(issuer).public_key(pub)
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - datetime.timedelta(minutes=5))
            .not_valid_after(_now() + datetime.timedelta(days=days)))


def make_ca(out: Path, name: str = "ca", cn: str = "anju site CA", days: int = 3650) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (_builder(cn, subject, days, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return _save(Path(out), name, cert, key)


def _issue(out: Path, ca: str, name: str, cn: str, days: int, usage, sans=()) -> Path:
    out = Path(out)
    ca_cert, ca_key = _load_ca(out, ca)
    key = ec.generate_private_key(ec.SECP256R1())
    b = (_builder(cn, ca_cert.subject, days, key.public_key())
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return _save(out, name, b.sign(ca_key, hashes.SHA256()), key)


def make_server(out: Path, name: str, hosts: list[str], ca: str = "ca", days: int = 825) -> Path:
    """A broker's (or webhook server's) certificate for `hosts` (names or IPs)."""
    if not hosts:
        raise CertError("a server certificate needs at least one host name or address")
    sans = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    return _issue(out, ca, name, hosts[0], days, ExtendedKeyUsageOID.SERVER_AUTH, sans)


def make_client(out: Path, name: str, cn: str | None = None, ca: str = "ca",
                days: int = 825) -> Path:
    """A client certificate (the hub, or a device) whose identity is `cn` (default `name`)."""
    return _issue(out, ca, name, cn or name, days, ExtendedKeyUsageOID.CLIENT_AUTH)


# ---- `anju certs ...` -------------------------------------------------------------
def register(sub) -> None:
    c = sub.add_parser("certs", help="site CA, broker, hub and device certificates").add_subparsers(
        dest="certs_command", required=True)

    def common(p, ca=True):
        p.add_argument("--out", default="var/certs", help="certificate folder (default var/certs)")
        if ca:
            p.add_argument("--ca", default="ca", help="CA file name in --out (default ca)")
        p.add_argument("--days", type=int, default=None)

    p = c.add_parser("ca", help="make the site CA (ca.pem, ca.key)")
    common(p, ca=False)
    p.add_argument("--name", default="ca")
    p.add_argument("--cn", default="anju site CA")
    p.set_defaults(func=lambda a: _run(make_ca, a.out, a.name, a.cn, **_days(a)))
    p = c.add_parser("server", help="a broker's (or webhook server's) certificate")
    common(p)
    p.add_argument("name")
    p.add_argument("--host", action="append", required=True,
                   help="host name or IP address the clients connect to (repeatable)")
    p.set_defaults(func=lambda a: _run(make_server, a.out, a.name, a.host, a.ca, **_days(a)))
    p = c.add_parser("hub", help="the hub's client certificate (identity hub-<site>)")
    common(p)
    p.add_argument("site")
    p.set_defaults(func=lambda a: _run(make_client, a.out, "hub-" + a.site, None, a.ca,
                                       **_days(a)))
    p = c.add_parser("device", help="a device's client certificate (identity = device id)")
    common(p)
    p.add_argument("device")
    p.set_defaults(func=lambda a: _run(make_client, a.out, a.device, None, a.ca, **_days(a)))


def _days(args) -> dict:
    return {} if args.days is None else {"days": args.days}


def _run(fn, *args, **kwargs) -> int:
    import sys
    try:
        path = fn(Path(args[0]), *args[1:], **kwargs)
    except CertError as exc:
        print("anju certs: %s" % exc, file=sys.stderr)
        return 2
    print("wrote %s and %s" % (path, path.with_suffix(".key")))
    return 0
