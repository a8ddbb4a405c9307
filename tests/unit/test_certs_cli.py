"""`anju certs`: the files it writes verify as a chain, keys are 0600, and an
existing key is never overwritten (exit code 2, nothing printed about the key)."""
import ssl

from cryptography import x509

from host_tools import cli


def test_certs_commands_make_a_verifiable_chain(tmp_path, capsys):
    out = str(tmp_path / "certs")
    assert cli.main(["certs", "ca", "--out", out]) == 0
    assert cli.main(["certs", "server", "broker", "--host", "127.0.0.1", "--host",
                     "mqtt.sunrise.lan", "--out", out]) == 0
    assert cli.main(["certs", "hub", "sunrise", "--out", out]) == 0
    assert cli.main(["certs", "device", "door-101", "--out", out, "--days", "30"]) == 0
    certs = tmp_path / "certs"
    for name in ("ca", "broker", "hub-sunrise", "door-101"):
        assert (certs / (name + ".key")).stat().st_mode & 0o777 == 0o600
        # loads as a client/server identity: the key matches the certificate
        ssl.create_default_context().load_cert_chain(certs / (name + ".pem"),
                                                     certs / (name + ".key"))
    door = x509.load_pem_x509_certificate((certs / "door-101.pem").read_bytes())
    assert door.subject.rfc4514_string() == "CN=door-101"
    ca = x509.load_pem_x509_certificate((certs / "ca.pem").read_bytes())
    door.verify_directly_issued_by(ca)
    san = x509.load_pem_x509_certificate((certs / "broker.pem").read_bytes()).extensions \
        .get_extension_for_class(x509.SubjectAlternativeName).value
    assert "mqtt.sunrise.lan" in san.get_values_for_type(x509.DNSName)
    before = (certs / "door-101.key").read_bytes()
    capsys.readouterr()
    assert cli.main(["certs", "device", "door-101", "--out", out]) == 2
    assert (certs / "door-101.key").read_bytes() == before
    assert "PRIVATE" not in capsys.readouterr().err
